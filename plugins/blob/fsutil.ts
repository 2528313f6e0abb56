import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

/** A unique file name (temp files, block content). */
export function uniqueName(): string {
  return `${Date.now().toString(36)}-${randomBytes(8).toString("hex")}`;
}

/** fsync a directory so a rename in it survives power loss. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes `data` to `path` atomically: temp file → fsync → rename → fsync of the folder. With `sync` false the
 * fsyncs are skipped (still all-or-nothing after a process crash, not after power loss).
 */
export async function writeFileDurable(path: string, data: string | Buffer, tmpDir: string, sync = true): Promise<void> {
  const tmp = join(tmpDir, uniqueName());
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.writeFile(data);
    if (sync) await fh.sync();
  } finally {
    await fh.close();
  }
  await mkdir(dirname(path), { recursive: true });
  await rename(tmp, path);
  if (sync) await syncDir(dirname(path));
}

/**
 * Streams `source` into a temp file through `meter` (which may refuse by throwing), fsyncs it and returns its
 * path and size; the caller renames it into place. The temp file is removed on failure.
 */
export async function streamToTemp(source: Readable, tmpDir: string, meter: (bytes: number) => void): Promise<{ path: string; size: number }> {
  const tmp = join(tmpDir, uniqueName());
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        meter(chunk.length);
        size += chunk.length;
        cb(null, chunk);
      } catch (err) {
        cb(err as Error);
      }
    },
  });
  try {
    // flush: the descriptor is fsynced before it is closed, so "finished" means durable.
    await pipeline(source, counter, createWriteStream(tmp, { mode: 0o600, flush: true, highWaterMark: 1024 * 1024 }));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return { path: tmp, size };
}
