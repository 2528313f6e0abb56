import { createHash } from "node:crypto";
import { closeSync, openSync, read } from "node:fs";
import { open, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { StrataError } from "../../core/index.js";
import type { DiskStore } from "./disk-store.js";

const READ_CHUNK = 1024 * 1024;

/**
 * One verified upstream fetch of a blob, shared by every client that asks for it meanwhile (single flight).
 * Bytes go to a temp file while sha256 and the size are checked; on success the file is fsync'd and renamed
 * into its content-addressed place. Clients read the growing temp file (openReader), never the upstream
 * socket, so a slow client does not slow the fetch, and the last byte is released only after verification:
 * a client gets the whole verified blob or a destroyed connection, never a short "success".
 */
export class Fill {
  readonly tmpPath: string;
  /** Bytes written to the temp file so far. */
  written = 0;
  state: "running" | "done" | "failed" = "running";
  error?: Error;
  private wake: { promise: Promise<void>; resolve: () => void };

  constructor(
    readonly digest: string,
    /** From upstream Content-Length; undefined when it sent none. */
    readonly expectedSize: number | undefined,
    private readonly store: DiskStore,
  ) {
    this.tmpPath = store.tmpPath(digest);
    // Created now, so a client joining before run() has opened it can already open it for reading.
    closeSync(openSync(this.tmpPath, "wx", 0o600));
    this.wake = deferred();
  }

  /** Size once known for sure. */
  get size(): number | undefined {
    return this.state === "done" ? this.written : this.expectedSize;
  }

  /** Resolves at the next change (more bytes, done, failed). */
  changed(): Promise<void> {
    return this.wake.promise;
  }

  /** Opens the temp file for reading; call only while running (synchronously after checking state), or use the final path. */
  openReader(): number {
    return openSync(this.state === "done" ? this.store.blobPath(this.digest) : this.tmpPath, "r");
  }

  /** Consumes the upstream body; resolves when the blob is kept, rejects (and keeps nothing) otherwise. */
  async run(body: IncomingMessage): Promise<void> {
    const hash = createHash("sha256");
    const fh = await open(this.tmpPath, "r+");
    try {
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          if (this.expectedSize !== undefined && this.written + chunk.length > this.expectedSize) {
            throw new StrataError("STRATA_REGISTRY_BLOB_INVALID", `upstream sent more than the ${this.expectedSize} bytes it announced for ${this.digest}`);
          }
          hash.update(chunk);
          let off = 0;
          while (off < chunk.length) {
            const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, this.written + off);
            off += bytesWritten;
          }
          this.written += chunk.length;
          this.signal();
        }
        if (!body.complete) throw new StrataError("STRATA_REGISTRY_BLOB_INVALID", `upstream closed the body of ${this.digest} early`);
        if (this.expectedSize !== undefined && this.written !== this.expectedSize) {
          throw new StrataError("STRATA_REGISTRY_BLOB_INVALID", `upstream sent ${this.written} of the ${this.expectedSize} bytes of ${this.digest} (truncated)`);
        }
        const actual = `sha256:${hash.digest("hex")}`;
        if (actual !== this.digest) {
          throw new StrataError("STRATA_REGISTRY_BLOB_INVALID", `upstream bytes for ${this.digest} hash to ${actual}; nothing was kept`);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.store.verifiedRename(this.tmpPath, this.digest);
      this.state = "done";
      this.signal();
    } catch (err) {
      body.destroy();
      await rm(this.tmpPath, { force: true });
      this.error = err instanceof Error ? err : new Error(String(err));
      this.state = "failed";
      this.signal();
      throw this.error;
    }
  }

  /** Fails a running fill (plugin stop). */
  abort(body: IncomingMessage | undefined, reason: string): void {
    body?.destroy(new Error(reason));
  }

  private signal(): void {
    const w = this.wake;
    this.wake = deferred();
    w.resolve();
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Streams `[start, end]` of a fill to `res` as the bytes land; headers must already be set. Holds back the
 * final byte until the fill is verified; destroys `res` if the fill fails. `end` undefined: to the end.
 */
export async function streamFill(fill: Fill, res: ServerResponse, start = 0, end?: number): Promise<void> {
  let fd: number;
  try {
    fd = fill.openReader();
  } catch (err) {
    res.destroy(err as Error);
    return;
  }
  let closed = false;
  let onClose!: () => void;
  const whenClosed = new Promise<void>((r) => {
    onClose = () => {
      closed = true;
      r();
    };
  });
  res.once("close", onClose);
  const buf = Buffer.allocUnsafe(READ_CHUNK);
  let pos = start;
  try {
    for (;;) {
      if (closed) return;
      if (fill.state === "failed") {
        res.destroy(fill.error);
        return;
      }
      const total = fill.state === "done" ? fill.written : undefined;
      const last = end ?? (total !== undefined ? total - 1 : undefined);
      if (last !== undefined && pos > last) {
        res.end();
        return;
      }
      // Bytes readable now: everything once verified, else all but the final byte.
      const ready = fill.state === "done" ? fill.written : Math.max(0, fill.written - 1);
      const limit = last !== undefined ? Math.min(ready, last + 1) : ready;
      if (pos >= limit) {
        await Promise.race([fill.changed(), whenClosed]);
        continue;
      }
      const n = await new Promise<number>((resolve, reject) =>
        read(fd, buf, 0, Math.min(READ_CHUNK, limit - pos), pos, (err, bytes) => (err ? reject(err) : resolve(bytes))),
      );
      if (n === 0) throw new Error(`short read of ${fill.digest} at ${pos}`);
      pos += n;
      // A copy: buf is reused for the next read while this chunk may still sit in the socket's queue.
      if (!res.write(Buffer.from(buf.subarray(0, n)))) {
        await new Promise<void>((r) => {
          const done = (): void => {
            res.off("drain", done);
            res.off("close", done);
            r();
          };
          res.on("drain", done);
          res.on("close", done);
        });
      }
    }
  } catch (err) {
    res.destroy(err as Error);
  } finally {
    res.off("close", onClose);
    closeSync(fd);
  }
}
