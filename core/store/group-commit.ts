import type { ClassicLevel } from "classic-level";
import { StrataError } from "../errors.js";

export type Op =
  | { type: "put"; key: string; value: Buffer }
  | { type: "del"; key: string };

/** One batch being filled: appends share its ops array and its promise (no allocation per append). */
class Batch {
  readonly ops: Op[] = [];
  readonly durable: (() => void)[] = [];
  readonly failed: (() => void)[] = [];
  resolve!: () => void;
  reject!: (e: unknown) => void;
  readonly done = new Promise<void>((res, rej) => { this.resolve = res; this.reject = rej; });
}

/**
 * Group commit: every append joins the pending batch; one flush at a time writes the whole batch with
 * `db.batch(ops, { sync })` and resolves its appends only after it returns, then repeats while more are
 * pending. 100 concurrent writers share one fsync instead of paying one each (spikes.md §4). There is no timer
 * window: the batch that fills while one fsync runs is the next one, so a lone write waits for nothing and a busy
 * store batches as much as its disk is slow (a `[store] commit_window_ms` key once said otherwise and was never
 * read; it is gone, and a config that still sets it is refused naming it).
 */
export class GroupCommit {
  private pending: Batch | undefined;
  private flushing: Promise<void> | undefined;
  /** Ops added to every batch just before it is written (e.g. the id reservation). */
  beforeWrite: (() => Op[]) | undefined;
  /** Called when a batch that carried `beforeWrite`'s ops failed, so they can be carried again. */
  beforeWriteFailed: (() => void) | undefined;
  batches = 0;

  constructor(private readonly db: ClassicLevel<string, Buffer>, private readonly sync: boolean) {}

  /**
   * Adds ops to the pending batch. `onDurable` runs synchronously once that batch is on disk, before any
   * caller's promise resolves (so in-memory state follows disk in append order); `onFailed` if it failed.
   */
  append(ops: Op[], onDurable?: () => void, onFailed?: () => void): Promise<void> {
    const batch = (this.pending ??= new Batch());
    for (const op of ops) batch.ops.push(op);
    if (onDurable) batch.durable.push(onDurable);
    if (onFailed) batch.failed.push(onFailed);
    if (!this.flushing) this.flushing = this.flushLoop();
    return batch.done;
  }

  /** Resolves when nothing is pending or being written. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flushLoop(): Promise<void> {
    // Yield once so that appends made in the same tick join the first batch.
    await Promise.resolve();
    while (this.pending) {
      const batch = this.pending;
      this.pending = undefined;
      const extra = this.beforeWrite ? this.beforeWrite() : [];
      for (const op of extra) batch.ops.push(op);
      try {
        await this.db.batch(batch.ops, { sync: this.sync });
        this.batches++;
      } catch (cause) {
        const err = new StrataError("STRATA_STORE_WRITE",
          `store write of ${batch.ops.length} ops failed: check the disk under the store path (full, read-only, I/O error)`,
          { cause });
        if (extra.length) this.beforeWriteFailed?.();
        for (const f of batch.failed) f();
        batch.reject(err);
        continue;
      }
      for (const f of batch.durable) f();
      batch.resolve();
    }
    this.flushing = undefined;
  }
}
