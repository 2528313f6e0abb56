import type { FileHandle } from "node:fs/promises";
import type { ServerResponse } from "node:http";

/** Bytes per read and per write to the socket. */
const CHUNK = 256 * 1024;
/** Chunks handed to the socket and not yet written out, per response: the socket never waits for a disk read. */
const DEPTH = 4;
/** Idle buffers kept for the next requests. */
const KEEP = 32;
const idle: Buffer[] = [];

function take(): Buffer {
  return idle.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
}

function give(buf: Buffer): void {
  if (idle.length < KEEP) idle.push(buf);
}

/**
 * Writes bytes `[start, end]` of a verified file to `res` (headers already set) and closes `fh`. Up to DEPTH
 * chunks are queued on the socket while the next one is read, so the socket always has bytes to send. Buffers
 * are pooled across requests instead of createReadStream's fresh allocation per chunk: at warm-hit rates that
 * garbage cost as much CPU as the TLS encryption. A buffer returns to the pool only from its write callback
 * (the socket is done with it), never after an error.
 */
export async function sendFileRange(fh: FileHandle, start: number, end: number, res: ServerResponse): Promise<void> {
  let queued = 0;
  let wake: (() => void) | undefined;
  const signal = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  res.on("close", signal);
  try {
    for (let pos = start; pos <= end; ) {
      while (queued >= DEPTH && !res.destroyed) await new Promise<void>((r) => (wake = r));
      if (res.destroyed) return;
      const buf = take();
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, end - pos + 1), pos);
      if (bytesRead === 0) throw new Error(`a kept blob ended at byte ${pos}, before ${end}`);
      pos += bytesRead;
      if (res.destroyed) return;
      queued++;
      res.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead), (err) => {
        queued--;
        if (!err) give(buf);
        signal();
      });
    }
    res.end();
  } catch (err) {
    res.destroy(err as Error);
  } finally {
    res.off("close", signal);
    await fh.close();
  }
}
