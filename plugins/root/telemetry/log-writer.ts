import { mkdir, open, rm, stat, type FileHandle } from "node:fs/promises";
import type { Logger } from "../../../core/index.js";
import { listSegments, segmentName, segmentPath, segmentSeq } from "./segments.js";
import type { TelemetryRecord } from "./record.js";

/** How far back (bytes of the newest segments) the ids of records already written are read at open. */
const TAIL_BYTES = 8 * 1024 * 1024;
/** Ids remembered for dropping redeliveries: far more than a crash can leave unacknowledged. */
const RECENT_IDS = 50_000;

export interface TelemetryLogOptions {
  dir: string;
  /** Total bytes kept; the oldest closed segments are deleted past it. */
  maxBytes: number;
  /** Closed segments whose newest line is older than this are deleted. */
  maxAgeMs: number;
  /** A segment is closed past this size. */
  segmentBytes: number;
  logger: Logger;
  /** Clock, for retention tests. */
  now?: () => number;
}

/**
 * The writer side of the telemetry log. `append` resolves once the batch is fsynced (only then may the
 * sink acknowledge its leases). Retention runs after each rotation and on `enforceRetention()`; a segment
 * is also closed once it is older than a tenth of max age, so age retention deletes in small steps.
 */
export class TelemetryLogWriter {
  private handle: FileHandle | undefined;
  private seq = 0;
  private size = 0;
  private openedAt = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly now: () => number;
  /** Ids of the newest records in the log, oldest first (a Set keeps insertion order). */
  private readonly recent = new Set<string>();
  private dropped = 0;

  constructor(private readonly opts: TelemetryLogOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Creates the folder and starts a fresh segment (never appends after a possibly torn line). */
  async open(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true });
    const names = await listSegments(this.opts.dir);
    const last = names.length ? segmentSeq(names[names.length - 1]!)! : 0;
    await this.rememberTail(names);
    await this.startSegment(last + 1);
    await this.enforceRetentionNow();
  }

  /** Records dropped because their `strataId` was already in the log (redelivered after a crash). */
  get duplicatesDropped(): number {
    return this.dropped;
  }

  /**
   * The ids of the newest lines already in the log. A crash between an append and its (unsynced) ack gets
   * the same messages delivered again on restart; they are among the last few thousand lines written.
   */
  private async rememberTail(names: readonly string[]): Promise<void> {
    let budget = TAIL_BYTES;
    const ids: string[][] = [];
    for (let i = names.length - 1; i >= 0 && budget > 0; i--) {
      const path = segmentPath(this.opts.dir, names[i]!);
      let text: string;
      try {
        const size = (await stat(path)).size;
        const handle = await open(path, "r");
        try {
          const length = Math.min(size, budget);
          const buf = Buffer.alloc(length);
          await handle.read(buf, 0, length, size - length);
          text = buf.toString("utf8");
          budget -= length;
        } finally {
          await handle.close();
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw err;
      }
      const found: string[] = [];
      for (const line of text.split("\n")) {
        const m = /"strataId":"((?:[^"\\]|\\.)*)"/.exec(line);
        if (m) found.push(JSON.parse(`"${m[1]}"`) as string);
      }
      ids.unshift(found);
    }
    for (const list of ids) for (const id of list) this.remember(id);
  }

  private remember(id: string): void {
    this.recent.add(id);
    if (this.recent.size > RECENT_IDS) this.recent.delete(this.recent.values().next().value!);
  }

  /** Appends records as lines; resolves when they are on disk. Calls are serialised in arrival order. */
  append(records: readonly TelemetryRecord[]): Promise<void> {
    const run = this.chain.then(() => this.appendNow(records));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Deletes segments past the size or age limit (not the one being written). */
  enforceRetention(): Promise<void> {
    const run = this.chain.then(() => this.enforceRetentionNow());
    this.chain = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    await this.handle?.close();
    this.handle = undefined;
  }

  private async appendNow(records: readonly TelemetryRecord[]): Promise<void> {
    if (this.closed || !this.handle) throw new Error("telemetry log is closed");
    const fresh = records.filter((r) => !this.recent.has(r.strataId));
    if (fresh.length < records.length) {
      this.dropped += records.length - fresh.length;
      this.opts.logger.info({ count: records.length - fresh.length, total: this.dropped }, "telemetry log: redelivered messages already in the log dropped");
    }
    records = fresh;
    if (records.length === 0) return;
    const tooOld = this.size > 0 && this.now() - this.openedAt > this.opts.maxAgeMs / 10;
    if (this.size >= this.opts.segmentBytes || tooOld) {
      await this.startSegment(this.seq + 1);
      await this.enforceRetentionNow();
    }
    const text = records.map((r) => JSON.stringify(r)).join("\n") + "\n";
    const bytes = Buffer.from(text, "utf8");
    let offset = 0;
    while (offset < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, offset, bytes.length - offset);
      offset += bytesWritten;
    }
    await this.handle.datasync();
    this.size += bytes.length;
    for (const r of records) this.remember(r.strataId);
  }

  private async startSegment(seq: number): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
    this.seq = seq;
    this.handle = await open(segmentPath(this.opts.dir, segmentName(seq)), "a");
    this.size = 0;
    this.openedAt = this.now();
    await syncDir(this.opts.dir);
  }

  private async enforceRetentionNow(): Promise<void> {
    const names = (await listSegments(this.opts.dir)).filter((n) => segmentSeq(n) !== this.seq);
    const sized: { name: string; size: number; mtimeMs: number }[] = [];
    for (const name of names) {
      try {
        const s = await stat(segmentPath(this.opts.dir, name));
        sized.push({ name, size: s.size, mtimeMs: s.mtimeMs });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
    let total = sized.reduce((sum, s) => sum + s.size, this.size);
    const oldestKept = this.now() - this.opts.maxAgeMs;
    let deleted = 0;
    for (const s of sized) {
      // Oldest first: drop while over the size budget or past the age limit; newer ones are then within both.
      if (total <= this.opts.maxBytes && s.mtimeMs >= oldestKept) break;
      await rm(segmentPath(this.opts.dir, s.name), { force: true });
      total -= s.size;
      deleted++;
    }
    if (deleted > 0) this.opts.logger.info({ deleted, keptBytes: total }, "telemetry log retention deleted segments");
  }
}

async function syncDir(dir: string): Promise<void> {
  const fd = await open(dir, "r");
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}
