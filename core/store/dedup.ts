/**
 * The dedup memory: the ids from other gateways and devices this store took, kept until their deadline so a
 * retried message is dropped as a duplicate.
 *
 * In memory: an IdSet (id-set.ts: runs of seqs as bits), bounded to `max` ids.
 * On disk: a queued message is its own record. When messages leave their queue (acked, dead-lettered), their
 * ids go into one `e\0{seq}` record per call, in the same atomic batch as the deletes of the messages: one
 * write per ack batch instead of one per id (a root forwarding to a sink wrote 3 ops per message, now ~2).
 * A record is deleted whole once its last deadline passed, and the oldest go first while the ids on disk
 * exceed `max`. `d\0{id}` keys (one per id, written before records existed) are folded into one record on open.
 */
import type { ClassicLevel } from "classic-level";
import type { Op } from "./group-commit.js";
import { Deque } from "./deque.js";
import { IdSet } from "./id-set.js";
import { SEP, decodeF64, seqHex } from "./codec.js";

/** An id and its deadline (ms since the epoch). */
export type IdDeadline = readonly [id: string, deadline: number];

interface DiskRecord { key: string; count: number; until: number }

const RECORD = `e${SEP}`;
const LEGACY = `d${SEP}`;

export class DedupMemory {
  private readonly seen: IdSet;
  private readonly records = new Deque<DiskRecord>();
  private idsOnDisk = 0;
  private seq = 1;

  constructor(private readonly max: number) {
    this.seen = new IdSet(max);
  }

  get size(): number {
    return this.seen.size;
  }

  has(id: string): boolean {
    return this.seen.has(id);
  }

  /** Remembers an id in memory (its disk record is the queued message, or a record written as it leaves). */
  remember(id: string, deadline: number): void {
    this.seen.add(id, deadline);
  }

  /**
   * The ops that keep these ids on disk as they leave their queue: one record, and the deletes of the oldest
   * records beyond `max`. Write them in the batch that deletes the messages, so an id is never forgotten early.
   */
  leaving(ids: readonly IdDeadline[]): Op[] {
    if (ids.length === 0) return [];
    let until = 0;
    for (const [, d] of ids) if (d > until) until = d;
    const key = RECORD + seqHex(this.seq++);
    this.records.push({ key, count: ids.length, until });
    this.idsOnDisk += ids.length;
    const ops: Op[] = [{ type: "put", key, value: Buffer.from(JSON.stringify(ids)) }];
    while (this.idsOnDisk > this.max && this.records.length > 1) {
      const old = this.records.shift() as DiskRecord;
      this.idsOnDisk -= old.count;
      ops.push({ type: "del", key: old.key });
    }
    return ops;
  }

  /** Reads the records at open; returns the ops that delete expired records and fold `d\0` keys into one. */
  async load(db: ClassicLevel<string, Buffer>, now: number): Promise<Op[]> {
    const ops: Op[] = [];
    for await (const [key, value] of db.iterator({ gte: RECORD, lt: `e\u0001` })) {
      this.seq = Math.max(this.seq, parseInt(key.slice(2), 16) + 1);
      const ids = JSON.parse(value.toString("utf8")) as IdDeadline[];
      let until = 0;
      for (const [id, d] of ids) {
        if (d > until) until = d;
        if (d > now) this.remember(id, d);
      }
      if (until <= now) { ops.push({ type: "del", key }); continue; }
      this.records.push({ key, count: ids.length, until });
      this.idsOnDisk += ids.length;
    }
    const legacy: IdDeadline[] = [];
    for await (const [key, value] of db.iterator({ gte: LEGACY, lt: `d\u0001` })) {
      ops.push({ type: "del", key });
      const d = decodeF64(value);
      if (d > now) { legacy.push([key.slice(2), d]); this.remember(key.slice(2), d); }
    }
    return [...ops, ...this.leaving(legacy)];
  }

  /** Forgets expired ids; returns how many, and the deletes of the records whose every id expired. */
  sweep(now: number): { forgotten: number; ops: Op[] } {
    const forgotten = this.seen.sweep(now);
    const ops: Op[] = [];
    this.records.removeWhere((r) => {
      if (r.until > now) return false;
      this.idsOnDisk -= r.count;
      ops.push({ type: "del", key: r.key });
      return true;
    });
    return { forgotten, ops };
  }
}
