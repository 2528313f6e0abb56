import { watch, type FSWatcher } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { listSegments, segmentPath, segmentSeq } from "./segments.js";

/**
 * The reader side of the telemetry log, safe while the gateway writes: it takes only complete lines (a
 * line is complete once its "\n" is written), so a batch being appended or a torn last line is never shown.
 */

/** Complete lines of a buffer, and how many bytes they span (the rest is an unfinished line). */
function completeLines(buf: Buffer): { lines: string[]; consumed: number } {
  const end = buf.lastIndexOf(0x0a);
  if (end < 0) return { lines: [], consumed: 0 };
  const lines = buf.toString("utf8", 0, end).split("\n").filter((l) => l.length > 0);
  return { lines, consumed: end + 1 };
}

async function readSegment(dir: string, name: string): Promise<Buffer | undefined> {
  try {
    return await readFile(segmentPath(dir, name));
  } catch (err) {
    // Retention may delete a segment between listing and reading it.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Where a follower has read up to. */
export interface LogPosition {
  segment: number;
  offset: number;
}

/**
 * The last `limit` lines (all lines when `limit` is undefined), oldest first, and the position right after
 * them (where `follow` continues).
 */
export async function readLast(dir: string, limit?: number): Promise<{ lines: string[]; position: LogPosition }> {
  const names = await listSegments(dir);
  const collected: string[][] = [];
  let count = 0;
  let position: LogPosition = { segment: 0, offset: 0 };
  for (let i = names.length - 1; i >= 0; i--) {
    const buf = await readSegment(dir, names[i]!);
    if (!buf) continue;
    const { lines, consumed } = completeLines(buf);
    if (i === names.length - 1) position = { segment: segmentSeq(names[i]!)!, offset: consumed };
    collected.unshift(limit === undefined ? lines : lines.slice(Math.max(0, lines.length - (limit - count))));
    count += lines.length;
    if (limit !== undefined && count >= limit) break;
  }
  const lines = collected.flat();
  return { lines: limit === undefined ? lines : lines.slice(Math.max(0, lines.length - limit)), position };
}

/**
 * Calls `onLine` for every complete line written after `from`, in order, until `signal` aborts. Wakes on
 * file-system events for the folder, with a slow poll as a fallback (some file systems send none).
 */
export async function follow(
  dir: string,
  from: LogPosition,
  onLine: (line: string) => void,
  signal: AbortSignal,
  pollMs = 1000,
): Promise<void> {
  let pos = { ...from };
  let wake: (() => void) | undefined;
  const poke = (): void => wake?.();
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { persistent: true }, poke);
    watcher.on("error", poke);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const timer = setInterval(poke, pollMs);
  signal.addEventListener("abort", poke, { once: true });
  try {
    while (!signal.aborted) {
      const changed = new Promise<void>((resolve) => (wake = resolve));
      const progressed = await readNew(dir, pos, onLine);
      pos = progressed.position;
      if (progressed.more) continue;
      await changed;
    }
  } finally {
    clearInterval(timer);
    watcher?.close();
  }
}

/** Reads what is new after `pos`: the rest of its segment, then moves to the next segment once one exists. */
async function readNew(
  dir: string,
  pos: LogPosition,
  onLine: (line: string) => void,
): Promise<{ position: LogPosition; more: boolean }> {
  const names = await listSegments(dir);
  const seqs = names.map((n) => segmentSeq(n)!);
  const current = names.find((n) => segmentSeq(n) === pos.segment);
  if (current) {
    const chunk = await readFrom(segmentPath(dir, current), pos.offset);
    const { lines, consumed } = completeLines(chunk);
    for (const line of lines) onLine(line);
    if (consumed > 0) return { position: { segment: pos.segment, offset: pos.offset + consumed }, more: true };
  }
  // Nothing new here: a newer segment means this one is finished (the writer moved on).
  const next = seqs.find((s) => s > pos.segment);
  if (next !== undefined) return { position: { segment: next, offset: 0 }, more: true };
  return { position: pos, more: false };
}

async function readFrom(path: string, offset: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return Buffer.alloc(0);
    throw err;
  }
  try {
    const { size } = await fh.stat();
    if (size <= offset) return Buffer.alloc(0);
    const buf = Buffer.alloc(size - offset);
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
