/**
 * The durable store on classic-level: endpoint queues, dedup memory, dead letters, Strata ids and namespaced
 * kv in one LevelDB, every write group-committed with `sync: true` (see group-commit.ts, codec.ts).
 */
import { ClassicLevel } from "classic-level";
import { StrataError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Message } from "../message.js";
import type { DeadLetter, DropCause, EnqueueItem, EnqueueOptions, EnqueueResult, EndpointQueue, Kv, Store, StoreStats } from "./types.js";
import { GroupCommit, type Op } from "./group-commit.js";
import { Deque } from "./deque.js";
import { LevelKv } from "./kv.js";
import { DedupMemory } from "./dedup.js";
import { LANES, LevelQueue, type Entry, type QueueHost } from "./queue.js";
import {
  IDS_KEY, SEP, decodeF64, decodeHeader, decodeRecord, encodeF64, encodeRecord, parseDeadKey,
  parseQueueKey, queueKey,
} from "./codec.js";

export interface LevelStoreOptions {
  /** Directory of the LevelDB (created when missing). */
  path: string;
  /** This gateway's device id: the prefix of every Strata id minted here. */
  gatewayId: string;
  /** Bytes of queued messages plus dead letters beyond which enqueue is refused. */
  quotaBytes: number;
  logger: Logger;
  now?: () => number;
  /** fsync each batch (default true). false only for benchmarks' baseline and the tests that prove the difference. */
  sync?: boolean;
  /** How often expired messages, dedup entries and old dead letters are swept (default 60 s; 0 = never). */
  sweepIntervalMs?: number;
  /** Bytes of message bodies kept in memory so live traffic is leased without a disk read (default 64 MiB). */
  cacheBytes?: number;
  /** Most ids the dedup memory keeps; the oldest are forgotten beyond it (default 1,000,000). */
  dedupMax?: number;
  /** Ids reserved durably at a time (default 10,000). */
  idBlock?: number;
  /** How long a dead letter is kept (default 7 days). */
  deadLetterRetentionMs?: number;
  /**
   * Fraction of `quotaBytes` one fairness share (a child gateway's subtree, a local device) may hold while
   * another share has messages queued (default 0.5; 1 turns it off). Alone, a share may use the whole quota.
   */
  shareQuota?: number;
}

interface DeadIndex { qseq: number; at: number; bytes: number }

/** One message's admission to the store (see `admit`). */
type Admission =
  | { kind: "duplicate"; first: Promise<void> | undefined }
  | { kind: "expired" }
  | { kind: "write"; minted: boolean; ops: Op[]; durable: () => void; failed: () => void };

export class LevelStore implements Store {
  private readonly db: ClassicLevel<string, Buffer>;
  private readonly commit: GroupCommit;
  /**
   * Acks (a delivered message's record leaves, its dedup key takes over) are written without their own fsync:
   * the write is atomic and ordered in LevelDB's log, survives a process crash, and the next synced batch makes
   * it durable. What a power loss can undo is only the ack, so the message is delivered again (at least once,
   * the consumer dedups by id), never lost; and an ack no longer takes an fsync slot the devices' writes wait behind.
   */
  private readonly settled: GroupCommit;
  /** Range deletes of acked records still running (close waits for them). */
  private readonly clearing = new Set<Promise<void>>();
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly queues = new Map<string, LevelQueue>();
  private readonly host: QueueHost;
  private state: "new" | "open" | "closing" | "closed" = "new";
  private sweepTimer: NodeJS.Timeout | undefined;

  // Strata ids: seqs below `idLimit` are reserved (durably once `idsDirty` is false).
  private nextSeq = 0;
  private idLimit = 0;
  private idsDirty = false;

  private qseq = 0;
  /** Ids taken from others, until their deadline (see dedup.ts). */
  private readonly dedup: DedupMemory;
  /** Enqueues not yet durable, so a concurrent duplicate waits for the first one's outcome. */
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly dead = new Deque<DeadIndex>();

  private usedBytes = 0;
  /** Queued bytes per fairness share, over every endpoint (dead letters are not in a share). */
  private readonly shareBytes = new Map<string, number>();
  private queuedBytes = 0;
  private cacheUsed = 0;
  private counters = { appended: 0, acked: 0, duplicates: 0, deadLettered: 0 };
  private dropped: Record<DropCause, number> = { ttl: 0, quota: 0, "dead-letter": 0 };

  private readonly sweepIntervalMs: number;
  private readonly cacheBytes: number;
  private readonly idBlock: number;
  private readonly deadRetentionMs: number;
  private readonly shareQuota: number;
  /** `{gatewayId}:`, the prefix of the ids nextId() mints. */
  private readonly ownPrefix: string;

  constructor(private readonly opts: LevelStoreOptions) {
    if (!opts.gatewayId || opts.gatewayId.includes(":")) {
      throw new StrataError("STRATA_STORE_CONFIG",
        `store gatewayId "${opts.gatewayId}" must be a non-empty device id without ':' (it prefixes every Strata id)`);
    }
    if (!(opts.quotaBytes > 0)) {
      throw new StrataError("STRATA_STORE_CONFIG", `store quotaBytes must be a positive number of bytes, got ${opts.quotaBytes}`);
    }
    this.log = opts.logger;
    this.now = opts.now ?? Date.now;
    this.sweepIntervalMs = opts.sweepIntervalMs ?? 60_000;
    this.cacheBytes = opts.cacheBytes ?? 64 * 1024 * 1024;
    this.dedup = new DedupMemory(opts.dedupMax ?? 1_000_000);
    this.idBlock = opts.idBlock ?? 10_000;
    this.deadRetentionMs = opts.deadLetterRetentionMs ?? 7 * 24 * 3600_000;
    this.shareQuota = opts.shareQuota ?? 0.5;
    this.ownPrefix = `${opts.gatewayId}:`;
    if (!(this.shareQuota > 0 && this.shareQuota <= 1)) {
      throw new StrataError("STRATA_STORE_CONFIG", `store shareQuota must be a fraction in (0, 1], got ${opts.shareQuota}`);
    }
    this.db = new ClassicLevel<string, Buffer>(opts.path, { keyEncoding: "utf8", valueEncoding: "buffer" });
    this.commit = new GroupCommit(this.db, opts.sync ?? true);
    this.settled = new GroupCommit(this.db, false);
    this.commit.beforeWrite = () => this.idOps();
    this.commit.beforeWriteFailed = () => { this.idsDirty = true; };
    this.host = this.makeHost();
  }

  async open(): Promise<void> {
    if (this.state !== "new") {
      throw new StrataError("STRATA_STORE_CLOSED", `store ${this.opts.path} was already opened; create a new LevelStore to reopen it`);
    }
    try {
      await this.db.open();
    } catch (cause) {
      throw new StrataError("STRATA_STORE_OPEN",
        `cannot open the store at ${this.opts.path}: another Strata process may hold it, or the directory is not writable by this user`,
        { cause });
    }
    const started = this.now();
    const stale: Op[] = [];
    const stored = await this.db.get(IDS_KEY);
    this.nextSeq = stored ? decodeF64(stored) : 1;
    this.idLimit = this.nextSeq + this.idBlock;

    let maxQseq = 0;
    const openedAt = this.now();
    for await (const [key, value] of this.db.iterator({ gte: `q${SEP}`, lt: "q\u0001" })) {
      const parsed = parseQueueKey(key);
      if (!parsed) { this.log.error({ key }, "store key not understood, skipped"); continue; }
      const h = decodeHeader(value);
      maxQseq = Math.max(maxQseq, parsed.qseq);
      const bytes = Buffer.byteLength(key) + value.length;
      this.usedBytes += bytes;
      const share = h.f ?? h.s;
      this.countShare(share, bytes);
      this.queueOf(parsed.endpoint).insert(this.entry(parsed.qseq, key, h.i, h.s, share, h.g ?? h.s, h.p, h.d, h.a, bytes, undefined));
      // A queued message is its own dedup record (no d-key until it leaves the queue: one op less per append).
      if (h.d > openedAt && !this.minted(h.i)) this.dedup.remember(h.i, h.d);
    }
    for await (const [key, value] of this.db.iterator({ gte: `x${SEP}`, lt: "x\u0001" })) {
      const qseq = parseDeadKey(key);
      maxQseq = Math.max(maxQseq, qseq);
      const h = decodeHeader(value);
      const bytes = Buffer.byteLength(key) + value.length;
      this.usedBytes += bytes;
      this.dead.push({ qseq, at: h.a, bytes });
    }
    for (const op of await this.dedup.load(this.db, this.now())) stale.push(op);
    this.qseq = maxQseq + 1;
    this.state = "open";
    // Reserve the first block of ids durably before any is handed out.
    this.idsDirty = true;
    await this.commit.append(stale);
    if (this.sweepIntervalMs > 0) {
      this.sweepTimer = setInterval(() => {
        this.sweep().catch((err: unknown) => this.log.warn({ err }, "store sweep failed"));
      }, this.sweepIntervalMs);
      this.sweepTimer.unref();
    }
    this.log.info({
      path: this.opts.path, queued: [...this.queues.values()].reduce((n, q) => n + q.depth(), 0),
      deadLetters: this.dead.length, dedup: this.dedup.size, usedBytes: this.usedBytes, ms: this.now() - started,
    }, "store opened");
  }

  async close(): Promise<void> {
    if (this.state !== "open") { this.state = "closed"; return; }
    this.state = "closing";
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.commit.drain();
    await this.settled.drain();
    while (this.clearing.size) await Promise.all([...this.clearing]);
    this.state = "closed";
    await this.db.close();
    for (const q of this.queues.values()) q.wake();
  }

  nextId(): string {
    this.assertOpen();
    if (this.nextSeq >= this.idLimit - this.idBlock / 2) {
      // Move the reservation ahead; every batch built from now on carries it until one is durable, and any
      // message using a new id is written in such a batch, so a restart never mints an id that left here.
      this.idLimit = Math.max(this.idLimit, this.nextSeq + 1) + this.idBlock;
      this.idsDirty = true;
      this.commit.append([]).catch((err: unknown) => this.log.warn({ err }, "id reservation write failed"));
    }
    return `${this.opts.gatewayId}:${this.nextSeq++}`;
  }

  async enqueue(message: Message, endpoints: readonly string[], options: EnqueueOptions = {}): Promise<EnqueueResult> {
    // Not enqueueMany of one: this is every device message's path, and the batch bookkeeping (a Set, five arrays,
    // two closures) cost it ~10 % of the mqtt bench's throughput (19.4k/19.8k vs 21.7k/22.5k delivered/s).
    this.assertOpen();
    const a = this.admit(message, endpoints, options, this.now());
    if (a.kind === "duplicate") {
      // Answer only once the first copy is durable: the caller acks its sender on this answer.
      if (a.first) await a.first;
      return { duplicate: true };
    }
    if (a.kind === "expired") return { duplicate: false };
    const write = this.commit.append(a.ops, a.durable, a.failed);
    if (a.minted) {
      await write;
      return { duplicate: false };
    }
    const id = message.id;
    this.inflight.set(id, write);
    try {
      await write;
    } finally {
      this.inflight.delete(id);
    }
    return { duplicate: false };
  }

  /**
   * What `enqueue` does for each item, in one group-commit append with one promise and one durable callback for
   * the lot: a child's batch of 64 messages paid 64 of each (and 64 inflight promises) for the same one fsync.
   * Results in item order. A refused item (quota, priority) rejects the call; the items before it are appended
   * all the same and become durable, as concurrent enqueues would, and the caller's retry finds them duplicates.
   */
  async enqueueMany(items: readonly EnqueueItem[]): Promise<EnqueueResult[]> {
    this.assertOpen();
    const now = this.now();
    const results: EnqueueResult[] = new Array<EnqueueResult>(items.length);
    const waits: Promise<unknown>[] = [];
    const ops: Op[] = [];
    const durable: (() => void)[] = [];
    const failed: (() => void)[] = [];
    const remembered: string[] = [];
    const here = new Set<string>();
    let refused: unknown;
    for (let i = 0; i < items.length; i++) {
      const { message, endpoints, options } = items[i]!;
      if (here.has(message.id)) {
        // The same id twice in one call: the second is a duplicate of the first, answered with the same write.
        this.counters.duplicates++;
        results[i] = { duplicate: true };
        continue;
      }
      let a: Admission;
      try {
        a = this.admit(message, endpoints, options ?? {}, now);
      } catch (err) {
        refused = err;
        break;
      }
      results[i] = { duplicate: a.kind === "duplicate" };
      if (a.kind === "duplicate" && a.first) waits.push(a.first);
      if (a.kind !== "write") continue;
      here.add(message.id);
      for (const op of a.ops) ops.push(op);
      durable.push(a.durable);
      failed.push(a.failed);
      if (!a.minted) remembered.push(message.id);
    }
    if (ops.length) {
      const write = this.commit.append(ops, () => { for (const f of durable) f(); }, () => { for (const f of failed) f(); });
      for (const id of remembered) this.inflight.set(id, write);
      const forget = () => { for (const id of remembered) if (this.inflight.get(id) === write) this.inflight.delete(id); };
      write.then(forget, forget);
      waits.push(write);
    }
    if (refused !== undefined) throw refused;
    await Promise.all(waits);
    return results;
  }

  /**
   * The checks and the planned write of one message: a duplicate (counted; `first` is the write of the copy
   * in flight, if any), expired (counted), or the ops to append with what to do once they are durable or
   * failed. Throws STRATA_STORE_PRIORITY or STRATA_STORE_QUOTA; on "write" the bytes are already counted.
   */
  private admit(message: Message, endpoints: readonly string[], options: EnqueueOptions, now: number): Admission {
    const id = message.id;
    const mintedHere = this.minted(id);
    const first = mintedHere ? undefined : this.inflight.get(id);
    if (first || (!mintedHere && this.dedup.has(id))) {
      this.counters.duplicates++;
      return { kind: "duplicate", first };
    }
    if (message.deadline <= now) {
      this.dropped.ttl++;
      return { kind: "expired" };
    }
    if (!(message.priority >= 0 && message.priority < LANES) || !Number.isInteger(message.priority)) {
      throw new StrataError("STRATA_STORE_PRIORITY",
        `message ${id} has priority ${message.priority}; a route priority must be an integer 0 (highest) to 9`);
    }
    const share = options.share ?? message.source;
    const group = options.group ?? message.source;
    const value = encodeRecord(message, now, undefined, share, group);
    const planned = endpoints.map((endpoint) => {
      const qseq = this.qseq++;
      const key = queueKey(endpoint, qseq);
      return { endpoint, qseq, key, bytes: Buffer.byteLength(key) + value.length };
    });
    const size = planned.reduce((n, p) => n + p.bytes, 0);
    if (this.usedBytes + size > this.opts.quotaBytes) {
      this.dropped.quota++;
      throw new StrataError("STRATA_STORE_QUOTA",
        `store quota reached (${this.usedBytes} of ${this.opts.quotaBytes} bytes used, message ${id} needs ${size}): ` +
        "refuse the sender until the upstream drains the backlog, or raise [store] quota");
    }
    const own = this.shareBytes.get(share) ?? 0;
    const cap = this.shareQuota * this.opts.quotaBytes;
    if (own + size > cap && this.queuedBytes > own) {
      this.dropped.quota++;
      throw new StrataError("STRATA_STORE_QUOTA",
        `store share of ${share} reached (${own} bytes queued, at most ${Math.floor(cap)} of the ${this.opts.quotaBytes}-byte quota ` +
        `while others have messages queued; message ${id} needs ${size}): refuse this sender until its backlog drains, or raise [store] quota`);
    }
    this.usedBytes += size;
    this.countShare(share, size);
    return {
      kind: "write",
      minted: mintedHere,
      ops: planned.map((p) => ({ type: "put", key: p.key, value })),
      durable: () => {
        if (!mintedHere) this.dedup.remember(id, message.deadline);
        this.counters.appended++;
        for (const p of planned) {
          const e = this.entry(p.qseq, p.key, id, message.source, share, group, message.priority, message.deadline, now, p.bytes, undefined);
          this.host.cache(e, message);
          this.queueOf(p.endpoint).insert(e);
        }
      },
      failed: () => { this.usedBytes -= size; this.countShare(share, -size); },
    };
  }

  queue(endpoint: string): EndpointQueue {
    return this.queueOf(endpoint);
  }

  async deadLetters(limit = 100): Promise<DeadLetter[]> {
    this.assertOpen();
    const out: DeadLetter[] = [];
    for await (const [, value] of this.db.iterator({ gte: `x${SEP}`, lt: "x\u0001", reverse: true, limit })) {
      const { header, message } = decodeRecord(value);
      out.push({ message, endpoint: header.ep ?? "", reason: header.r ?? "", at: header.a });
    }
    return out.reverse();
  }

  stats(): StoreStats {
    const queues: StoreStats["queues"] = {};
    for (const [name, q] of this.queues) queues[name] = { depth: q.depth(), oldestAgeMs: q.oldestAgeMs() };
    return {
      ...this.counters, dropped: { ...this.dropped }, usedBytes: this.usedBytes, quotaBytes: this.opts.quotaBytes, queues,
      shares: Object.fromEntries(this.shareBytes),
    };
  }

  kv<V = unknown>(namespace: string): Kv<V> {
    if (!namespace || namespace.includes(SEP)) {
      throw new StrataError("STRATA_STORE_CONFIG", `kv namespace "${namespace}" must be non-empty and contain no NUL character`);
    }
    return new LevelKv<V>(this.db, this.commit, namespace, () => this.assertOpen());
  }

  /** Drops expired messages, forgets expired ids and old dead letters; runs on a timer, callable by tests. */
  async sweep(): Promise<{ ttl: number; dedup: number; deadLetters: number }> {
    this.assertOpen();
    const now = this.now();
    let ttl = 0;
    for (const q of this.queues.values()) ttl += q.sweepExpired(now);
    const { forgotten: dedup, ops } = this.dedup.sweep(now);
    let deadLetters = 0;
    while (this.dead.length && (this.dead.peek() as DeadIndex).at + this.deadRetentionMs <= now) {
      const d = this.dead.shift() as DeadIndex;
      this.usedBytes -= d.bytes;
      ops.push({ type: "del", key: `x${SEP}${d.qseq.toString(16).padStart(13, "0")}` });
      deadLetters++;
    }
    if (ops.length) await this.commit.append(ops);
    if (ttl || dedup || deadLetters) this.log.debug({ ttl, dedup, deadLetters }, "store swept");
    return { ttl, dedup, deadLetters };
  }

  /** Batches written since open (group-commit efficiency, for benchmarks). */
  get batchesWritten(): number {
    return this.commit.batches;
  }

  private assertOpen(): void {
    if (this.state !== "open") {
      throw new StrataError("STRATA_STORE_CLOSED",
        `store ${this.opts.path} is ${this.state === "new" ? "not open yet: await open() first" : "closed"}`);
    }
  }

  private queueOf(endpoint: string): LevelQueue {
    let q = this.queues.get(endpoint);
    if (!q) {
      if (!endpoint || endpoint.includes(SEP)) {
        throw new StrataError("STRATA_STORE_CONFIG", `endpoint name "${endpoint}" must be non-empty and contain no NUL character`);
      }
      q = new LevelQueue(endpoint, this.host);
      this.queues.set(endpoint, q);
    }
    return q;
  }

  private entry(qseq: number, key: string, id: string, source: string, share: string, group: string, priority: number, deadline: number,
    storedAt: number, bytes: number, message: Message | undefined): Entry {
    const lane = Math.min(LANES - 1, Math.max(0, Math.trunc(priority) || 0));
    return { qseq, key, id, source, share, group, lane, deadline, storedAt, bytes, message, leased: false, attempts: 0, gone: false };
  }

  /**
   * Minted here by nextId(): such an id enters the store once (the hub enqueues a message on all its endpoints
   * in one call) and no other gateway or device can send it, so it needs no dedup memory or record — one Map
   * entry and one write less per message. Ids from children (their own prefixes) are remembered as before.
   */
  private minted(id: string): boolean {
    return id.startsWith(this.ownPrefix);
  }

  private countShare(share: string, bytes: number): void {
    const n = (this.shareBytes.get(share) ?? 0) + bytes;
    if (n > 0) this.shareBytes.set(share, n); else this.shareBytes.delete(share);
    this.queuedBytes += bytes;
  }

  private idOps(): Op[] {
    if (!this.idsDirty) return [];
    this.idsDirty = false;
    return [{ type: "put", key: IDS_KEY, value: encodeF64(Math.max(this.idLimit, this.nextSeq)) }];
  }

  private makeHost(): QueueHost {
    return {
      log: this.log,
      now: () => this.now(),
      assertOpen: () => this.assertOpen(),
      nextQseq: () => this.qseq++,
      leaving: (entries) => {
        const ids: [string, number][] = [];
        for (const e of entries) if (!this.minted(e.id)) ids.push([e.id, e.deadline]);
        return this.dedup.leaving(ids);
      },
      readValues: (keys) => this.db.getMany(keys),
      append: (ops, onDurable, onFailed) => this.commit.append(ops, onDurable, onFailed),
      appendSettled: (ops, onWritten) => this.settled.append(ops, onWritten),
      clearRange: (first, last) => {
        const done = this.db.clear({ gte: first, lte: last })
          // Not fatal: the records stay on disk and come back after a restart (delivered again, at least once).
          .catch((err: unknown) => this.log.warn({ err, first, last }, "delete of acknowledged messages failed"))
          .finally(() => this.clearing.delete(done));
        this.clearing.add(done);
      },
      forget: (e) => {
        this.usedBytes -= e.bytes;
        this.countShare(e.share, -e.bytes);
        if (e.message) { this.cacheUsed -= e.bytes; e.message = undefined; }
      },
      cache: (e, m) => {
        if (e.message || this.cacheUsed + e.bytes > this.cacheBytes) return;
        e.message = m;
        this.cacheUsed += e.bytes;
      },
      forgetCache: (e) => {
        if (e.message) { this.cacheUsed -= e.bytes; e.message = undefined; }
      },
      countAcked: (n) => { this.counters.acked += n; },
      countTtl: (n) => { this.dropped.ttl += n; },
      addDeadLetter: (qseq, at, bytes) => {
        this.usedBytes += bytes;
        this.dead.push({ qseq, at, bytes });
        this.counters.deadLettered++;
        this.dropped["dead-letter"]++;
      },
    };
  }
}
