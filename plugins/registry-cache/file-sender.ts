import type { FileHandle } from "node:fs/promises";
import type { ServerResponse } from "node:http";

/** Bytes per read and per write to the socket (a few TLS records; small enough to stay in the CPU's cache). */
const CHUNK = 256 * 1024;
/** Idle buffers kept for the next requests. */
const KEEP = 16;
const idle: Buffer[] = [];

function take(): Buffer {
  return idle.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
}

function give(buf: Buffer): void {
  if (idle.length < KEEP) idle.push(buf);
}

/**
 * Writes bytes `[start, end]` of a verified file to `res` (headers already set) and closes `fh`, reading the next chunk while
 * the socket takes the last one. Buffers are pooled across requests instead of createReadStream's fresh
 * allocation per chunk: at warm-hit rates that garbage cost as much CPU as the TLS encryption. A buffer returns
 * to the pool only from its write callback (the socket is done with it), never after an error.
 */
export async function sendFileRange(fh: FileHandle, start: number, end: number, res: ServerResponse): Promise<void> {
  let next: Promise<{ buf: Buffer; n: number }> | undefined;
  const read = async (pos: number): Promise<{ buf: Buffer; n: number }> => {
    const buf = take();
    const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, end - pos + 1), pos);
    if (bytesRead === 0) throw new Error(`a kept blob ended at byte ${pos}, before ${end}`);
    return { buf, n: bytesRead };
  };
  try {
    let pos = start;
    next = read(pos);
    while (pos <= end) {
      const { buf, n } = await next!;
      next = undefined;
      pos += n;
      if (pos <= end) next = read(pos);
      if (res.destroyed) return;
      const ok = res.write(n === buf.length ? buf : buf.subarray(0, n), (err) => {
        if (!err) give(buf);
      });
      if (!ok && !(await drained(res))) return;
    }
    res.end();
  } catch (err) {
    res.destroy(err as Error);
  } finally {
    // A read still running (the client went away) must finish before the handle closes.
    await next?.catch(() => undefined);
    await fh.close();
  }
}

/** Resolves true on 'drain', false when the response closes first. */
function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => (): void => {
      res.off("drain", onDrain);
      res.off("close", onClose);
      resolve(ok);
    };
    const onDrain = done(true);
    const onClose = done(false);
    res.on("drain", onDrain);
    res.on("close", onClose);
  });
}
