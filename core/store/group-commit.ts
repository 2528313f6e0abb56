import type { ClassicLevel } from "classic-level";
import { StrataError } from "../errors.js";

export type Op =
  | { type: "put"; key: string; value: Buffer }
  | { type: "del"; key: string };

interface Pending {
  ops: Op[];
  /** Runs synchronously once the batch holding `ops` is durable, before the caller's promise resolves. */
  onDurable?: () => void;
  onFailed?: () => void;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: every append joins the pending batch; one flush at a time writes the whole batch with
 * `db.batch(ops, { sync })` and resolves its appends only after it returns, then repeats while more are
 * pending. 100 concurrent writers share one fsync instead of paying one each (spikes.md §4).
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  /** Ops added to every batch just before it is written (e.g. the id reservation). */
  beforeWrite: (() => Op[]) | undefined;
  /** Called when a batch that carried `beforeWrite`'s ops failed, so they can be carried again. */
  beforeWriteFailed: (() => void) | undefined;
  batches = 0;

  constructor(private readonly db: ClassicLevel<string, Buffer>, private readonly sync: boolean) {}

  append(ops: Op[], onDurable?: () => void, onFailed?: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ ops, onDurable, onFailed, resolve, reject });
      if (!this.flushing) this.flushing = this.flushLoop();
    });
  }

  /** Resolves when nothing is pending or being written. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flushLoop(): Promise<void> {
    // Yield once so that appends made in the same tick join the first batch.
    await Promise.resolve();
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      const ops: Op[] = [];
      for (const p of batch) for (const op of p.ops) ops.push(op);
      const extra = this.beforeWrite ? this.beforeWrite() : [];
      for (const op of extra) ops.push(op);
      try {
        await this.db.batch(ops, { sync: this.sync });
        this.batches++;
      } catch (cause) {
        const err = new StrataError("STRATA_STORE_WRITE",
          `store write of ${ops.length} ops failed: check the disk under the store path (full, read-only, I/O error)`,
          { cause });
        if (extra.length) this.beforeWriteFailed?.();
        for (const p of batch) { p.onFailed?.(); p.reject(err); }
        continue;
      }
      for (const p of batch) { p.onDurable?.(); p.resolve(); }
    }
    this.flushing = undefined;
  }
}
