/**
 * One endpoint's queue, held as an in-memory index over the records on disk: lanes per priority (0 highest
 * … 9); inside each lane a two-level round-robin: fairness shares first (the first hop below this gateway —
 * a child gateway for forwarded messages, the device itself for local ones), then the sources within a share,
 * each source one FIFO — or each group: the hop below the share, so that a grandchild's subtree is one FIFO.
 * A child with a thousand leaves thus gets one share, as a single local device does.
 * Bodies stay on disk unless they fit the store's read cache, so a backlog of millions costs only the index.
 */
import type { Logger } from "../log.js";
import type { Message } from "../message.js";
import type { EndpointQueue, Lease } from "./types.js";
import type { Op } from "./group-commit.js";
import { Deque } from "./deque.js";
import { deadKey, encodeRecord, decodeRecord } from "./codec.js";

export const LANES = 10;
/** Acked runs at least this long are deleted with one range clear instead of a delete per record. */
const MIN_CLEAR_RUN = 16;
/** Lane p gets 10 - p turns per round: priority 9 still gets 1 in 55 when every lane is busy. */
export const laneWeight = (p: number): number => LANES - p;

export interface Entry {
  readonly qseq: number;
  readonly key: string;
  readonly id: string;
  readonly source: string;
  /** The fairness share it is served in (see the file comment); the source itself unless told otherwise. */
  readonly share: string;
  /** Its FIFO inside the share: the hop below the share (EnqueueOptions.group); the source itself by default. */
  readonly group: string;
  readonly lane: number;
  readonly deadline: number;
  readonly storedAt: number;
  /** Bytes counted against the quota (key + value). */
  readonly bytes: number;
  /** Cached message; undefined when it must be read from disk. */
  message: Message | undefined;
  leased: boolean;
  attempts: number;
  gone: boolean;
}

/** What a queue needs from its store. */
export interface QueueHost {
  readonly log: Logger;
  now(): number;
  assertOpen(): void;
  nextQseq(): number;
  /** Ops that keep the ids of entries leaving their queue in the dedup memory on disk (see dedup.ts). */
  leaving(entries: readonly Entry[]): Op[];
  readValues(keys: string[]): Promise<(Buffer | undefined)[]>;
  append(ops: Op[], onDurable?: () => void, onFailed?: () => void): Promise<void>;
  /** Writes ops that may be undone by a power loss without losing a message (acks): no fsync of their own. */
  appendSettled(ops: Op[], onWritten?: () => void): Promise<void>;
  /** Deletes the keys from `first` to `last` inclusive, as appendSettled does (done on the I/O thread). */
  clearRange(first: string, last: string): void;
  /** The entry left the queue (acked, expired, dead-lettered): release its quota bytes and cache. */
  forget(entry: Entry): void;
  /** Keeps `m` in memory with the entry when the read cache has room. */
  cache(entry: Entry, m: Message): void;
  forgetCache(entry: Entry): void;
  countAcked(n: number): void;
  countTtl(n: number): void;
  /** A dead letter of `bytes` was written (quota, index, counters). */
  addDeadLetter(qseq: number, at: number, bytes: number): void;
}

const ENTRY = Symbol("strata.queueEntry");
const OWNER = Symbol("strata.queue");

/**
 * A lease carries its entry under a symbol, instead of a WeakMap lease → entry: a WeakMap entry per message
 * is an ephemeron the GC must trace on every cycle, and leases churn at the message rate.
 */
interface QueueLease extends Lease {
  [ENTRY]?: Entry;
  [OWNER]?: LevelQueue;
}

/** One fairness share in a lane: its sources' FIFOs, served round-robin. */
class Share {
  readonly sources = new Map<string, Deque<Entry>>();
  /** Sources with something available, in round-robin order. */
  readonly ring = new Deque<string>();
  available = 0;
}

class Lane {
  readonly shares = new Map<string, Share>();
  /** Shares with something available, in round-robin order. */
  readonly ring = new Deque<string>();
  available = 0;
  /** Smooth weighted round-robin state. */
  current = 0;
  constructor(readonly weight: number) {}
}

export class LevelQueue implements EndpointQueue {
  private readonly lanes: Lane[] = Array.from({ length: LANES }, (_, p) => new Lane(laneWeight(p)));
  /** Every queued entry, leased or not, by qseq (insertion order = age order). */
  private readonly all = new Map<number, Entry>();
  private waiters = new Set<() => void>();

  constructor(readonly endpoint: string, private readonly host: QueueHost) {}

  /** Adds a durable entry at the back of its source's FIFO. Entries arrive in qseq order. */
  insert(e: Entry): void {
    this.all.set(e.qseq, e);
    this.makeAvailable(e, false);
  }

  async lease(max: number): Promise<Lease[]> {
    this.host.assertOpen();
    const now = this.host.now();
    const picked: Entry[] = [];
    const expired: Entry[] = [];
    while (picked.length < max) {
      const lane = this.pickLane();
      if (!lane) break;
      const e = this.takeFrom(lane);
      if (e.deadline <= now) expired.push(e);
      else { e.leased = true; picked.push(e); }
    }
    if (expired.length) this.dropExpired(expired);
    const missing = picked.filter((e) => !e.message);
    if (missing.length) {
      let values: (Buffer | undefined)[];
      try {
        values = await this.host.readValues(missing.map((e) => e.key));
      } catch (err) {
        // Nothing was handed out: put everything back where it was, so no message is stuck "leased".
        for (const e of picked.reverse()) { e.leased = false; this.makeAvailable(e, true); }
        throw err;
      }
      missing.forEach((e, i) => {
        const v = values[i];
        if (v) e.message = decodeRecord(v).message;
      });
    }
    const out: Lease[] = [];
    for (const e of picked) {
      if (!e.message) {
        // The index and the disk disagree: never hand out a hole, say so loudly.
        this.host.log.error({ endpoint: this.endpoint, id: e.id, key: e.key }, "store record missing for queued entry");
        this.remove(e);
        continue;
      }
      const lease: QueueLease = { message: e.message, endpoint: this.endpoint, attempts: e.attempts, [ENTRY]: e, [OWNER]: this };
      out.push(lease);
      // The lease holds the message now; keep the cache for entries not yet handed out.
      this.host.forgetCache(e);
    }
    return out;
  }

  async ack(leases: readonly Lease[]): Promise<void> {
    this.host.assertOpen();
    const entries = this.entriesOf(leases);
    if (entries.length === 0) return;
    // One dedup record of their ids is written first, then the records leave: no id is forgotten early.
    // Unsynced (see LevelStore.settled): a power loss can only undo the ack, which means a redelivery.
    const { runs, singles } = this.acked(entries);
    const ops: Op[] = this.host.leaving(entries);
    for (const e of singles) ops.push({ type: "del", key: e.key });
    await this.host.appendSettled(ops, () => {
      let n = 0;
      for (const e of entries) if (!e.gone) { this.remove(e); n++; }
      this.host.countAcked(n);
    });
    for (const [first, last] of runs) this.host.clearRange(first, last);
  }

  release(leases: readonly Lease[]): void {
    const back: { e: Entry; lease: QueueLease }[] = [];
    for (const lease of leases as readonly QueueLease[]) {
      const e = this.entryOf(lease);
      if (e) back.push({ e, lease });
    }
    back.sort((a, b) => b.e.qseq - a.e.qseq);
    for (const { e, lease } of back) {
      e.leased = false;
      e.attempts++;
      lease[ENTRY] = undefined;
      this.host.cache(e, lease.message);
      this.makeAvailable(e, true);
    }
  }

  async deadLetter(lease: Lease, reason: string): Promise<void> {
    this.host.assertOpen();
    const [e] = this.entriesOf([lease]);
    if (!e) return;
    const at = this.host.now();
    const qseq = this.host.nextQseq();
    const key = deadKey(qseq);
    // A dead letter's stored-at is when it was dead-lettered (the retention clock and `DeadLetter.at`).
    const value = encodeRecord(lease.message, at, { endpoint: this.endpoint, reason });
    await this.host.append([{ type: "del", key: e.key }, { type: "put", key, value }, ...this.host.leaving([e])], () => {
      this.remove(e);
      this.host.addDeadLetter(qseq, at, Buffer.byteLength(key) + value.length);
    });
    // debug: the caller (the endpoint drain) logs the dead letter at warn with its context.
    this.host.log.debug({ endpoint: this.endpoint, id: e.id, source: e.source, reason }, "message dead-lettered");
  }

  waitAvailable(signal?: AbortSignal): Promise<void> {
    if (this.available() > 0 || signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  depth(): number {
    return this.all.size;
  }

  oldestAgeMs(): number {
    const first = this.all.values().next();
    return first.done ? 0 : Math.max(0, this.host.now() - first.value.storedAt);
  }

  /** Messages that could be leased now. */
  available(): number {
    let n = 0;
    for (const l of this.lanes) n += l.available;
    return n;
  }

  /** Drops every expired entry not currently leased (a leased one is dropped if it comes back). */
  sweepExpired(now: number): number {
    const expired: Entry[] = [];
    for (const lane of this.lanes) {
      for (const [name, share] of lane.shares) {
        for (const [source, dq] of share.sources) {
          const removed = dq.removeWhere((e) => {
            if (e.deadline > now) return false;
            expired.push(e);
            return true;
          });
          lane.available -= removed;
          share.available -= removed;
          if (dq.length === 0) {
            share.sources.delete(source);
            share.ring.removeWhere((s) => s === source);
          }
        }
        if (share.available === 0) {
          lane.shares.delete(name);
          lane.ring.removeWhere((s) => s === name);
        }
      }
    }
    if (expired.length) this.dropExpired(expired);
    return expired.length;
  }

  /** Wakes consumers (also on close, so their loops see the store closed). */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  // Lane choice: smooth weighted round-robin (nginx) over the lanes that have something available.
  private pickLane(): Lane | undefined {
    let best: Lane | undefined;
    let total = 0;
    for (const lane of this.lanes) {
      if (lane.available === 0) continue;
      lane.current += lane.weight;
      total += lane.weight;
      if (!best || lane.current > best.current) best = lane;
    }
    if (best) best.current -= total;
    return best;
  }

  // Share choice, then source choice: the next share in the lane's ring gives one message (from the next
  // source in its own ring) and goes to the back; so does that source within the share.
  private takeFrom(lane: Lane): Entry {
    const name = lane.ring.shift() as string;
    const share = lane.shares.get(name) as Share;
    const source = share.ring.shift() as string;
    const dq = share.sources.get(source) as Deque<Entry>;
    const e = dq.shift() as Entry;
    lane.available--;
    share.available--;
    if (dq.length > 0) share.ring.push(source);
    else share.sources.delete(source);
    if (share.available > 0) lane.ring.push(name);
    else lane.shares.delete(name);
    return e;
  }

  private makeAvailable(e: Entry, keepOrder: boolean): void {
    const lane = this.lanes[e.lane];
    let share = lane.shares.get(e.share);
    if (!share) {
      share = new Share();
      lane.shares.set(e.share, share);
      lane.ring.push(e.share);
    }
    let dq = share.sources.get(e.group);
    if (!dq) {
      dq = new Deque<Entry>();
      share.sources.set(e.group, dq);
      share.ring.push(e.group);
    }
    if (!keepOrder || dq.length === 0) {
      if (keepOrder) dq.unshift(e); else dq.push(e);
    } else {
      // A released entry goes back before newer messages of its source (binary search on qseq).
      let lo = 0, hi = dq.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((dq.at(mid) as Entry).qseq < e.qseq) lo = mid + 1; else hi = mid;
      }
      dq.insertAt(lo, e);
    }
    share.available++;
    lane.available++;
    this.wake();
  }

  private dropExpired(expired: Entry[]): void {
    for (const e of expired) this.remove(e);
    this.host.countTtl(expired.length);
    this.host.log.debug({ endpoint: this.endpoint, count: expired.length }, "expired messages dropped");
    this.host.append(expired.map((e) => ({ type: "del", key: e.key }))).catch((err: unknown) =>
      // Not fatal: the records are expired, the next open or sweep drops them again.
      this.host.log.warn({ err, endpoint: this.endpoint }, "delete of expired messages failed"));
  }

  private remove(e: Entry): void {
    if (e.gone) return;
    e.gone = true;
    this.all.delete(e.qseq);
    this.host.forget(e);
  }

  /**
   * Splits acked entries into runs that are consecutive in this queue (nothing queued between them, so one
   * range clear deletes exactly them: the native batch costs ~1.5 µs of main thread per key, a clear runs on
   * the I/O thread) and singles. Walks the queue from its oldest entry, a bounded distance.
   */
  private acked(entries: readonly Entry[]): { runs: [string, string][]; singles: Entry[] } {
    const runs: [string, string][] = [];
    const singles: Entry[] = [];
    if (entries.length < MIN_CLEAR_RUN) return { runs, singles: [...entries] };
    const acking = new Set(entries);
    let run: Entry[] = [];
    const close = (): void => {
      if (run.length >= MIN_CLEAR_RUN) runs.push([run[0]!.key, run[run.length - 1]!.key]);
      else for (const e of run) singles.push(e);
      run = [];
    };
    let budget = entries.length + 256;
    for (const e of this.all.values()) {
      if (acking.has(e)) {
        run.push(e);
        acking.delete(e);
        if (acking.size === 0) break;
      } else if (run.length) close();
      if (--budget === 0) break;
    }
    close();
    for (const e of acking) singles.push(e);
    return { runs, singles };
  }

  private entriesOf(leases: readonly Lease[]): Entry[] {
    const out: Entry[] = [];
    for (const l of leases) {
      const e = this.entryOf(l);
      if (e) out.push(e);
    }
    return out;
  }

  /** The entry a lease of this queue holds, while it is leased and queued. */
  private entryOf(lease: QueueLease): Entry | undefined {
    const e = lease[OWNER] === this ? lease[ENTRY] : undefined;
    return e && e.leased && !e.gone ? e : undefined;
  }
}
