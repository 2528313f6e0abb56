/**
 * The in-memory set of remembered ids, each until a deadline, bounded to `max` ids.
 *
 * Strata ids are `{gatewayId}:{seq}`, minted in order by one store, so the ids a parent sees from a subtree
 * are runs of consecutive seqs. They are kept as bits: per origin, chunks of 1024 seqs (128 bytes), each with
 * the latest deadline of its ids. A million ids cost ~130 KB instead of ~100 MB as Map entries, and a lookup is
 * a Map get by number plus a bit test. An id of another shape (a non-canonical seq) goes into a plain Map.
 *
 * Forgetting is by chunk: a chunk goes once its latest deadline passed, or oldest first while more than
 * `max` ids (or `max / 32` chunks, when an origin's ids are sparse) are kept. Keeping an id longer than its
 * deadline is harmless: a retry that late is expired and dropped anyway.
 */
const CHUNK_BITS = 10;
const CHUNK = 1 << CHUNK_BITS;

interface Chunk {
  readonly origin: string;
  readonly index: number;
  readonly bits: Uint32Array;
  count: number;
  until: number;
}

export class IdSet {
  private readonly origins = new Map<string, Map<number, Chunk>>();
  /** Chunks in creation order (the oldest are forgotten first). */
  private chunks: Chunk[] = [];
  private head = 0;
  private bitCount = 0;
  private readonly other = new Map<string, number>();
  private readonly maxChunks: number;

  constructor(private readonly max: number) {
    this.maxChunks = Math.max(2, Math.ceil(max / 32));
  }

  get size(): number {
    return this.bitCount + this.other.size;
  }

  has(id: string): boolean {
    const at = seqAt(id);
    if (at < 0) return this.other.has(id);
    const seq = seqOf(id, at);
    if (seq < 0) return this.other.has(id);
    const chunk = this.origins.get(id.slice(0, at))?.get(Math.floor(seq / CHUNK));
    if (!chunk) return false;
    const bit = seq % CHUNK;
    return (chunk.bits[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  add(id: string, deadline: number): void {
    const at = seqAt(id);
    const seq = at < 0 ? -1 : seqOf(id, at);
    if (seq < 0) {
      this.other.delete(id);
      this.other.set(id, deadline);
      for (const [old] of this.other) {
        if (this.other.size <= this.max) break;
        this.other.delete(old);
      }
      return;
    }
    const origin = id.slice(0, at);
    const index = Math.floor(seq / CHUNK);
    let byIndex = this.origins.get(origin);
    if (!byIndex) this.origins.set(origin, (byIndex = new Map()));
    let chunk = byIndex.get(index);
    if (!chunk) {
      chunk = { origin, index, bits: new Uint32Array(CHUNK / 32), count: 0, until: 0 };
      byIndex.set(index, chunk);
      this.chunks.push(chunk);
    }
    if (deadline > chunk.until) chunk.until = deadline;
    const bit = seq % CHUNK;
    const mask = 1 << (bit & 31);
    if ((chunk.bits[bit >>> 5]! & mask) === 0) {
      chunk.bits[bit >>> 5]! |= mask;
      chunk.count++;
      this.bitCount++;
    }
    while ((this.bitCount > this.max || this.chunks.length - this.head > this.maxChunks) && this.chunks.length - this.head > 1) {
      this.drop(this.chunks[this.head++]!);
    }
    if (this.head > 1024 && this.head * 2 > this.chunks.length) { this.chunks = this.chunks.slice(this.head); this.head = 0; }
  }

  /** Forgets what expired by `now`; returns how many ids. */
  sweep(now: number): number {
    let forgotten = 0;
    for (const [id, deadline] of this.other) {
      if (deadline <= now) { this.other.delete(id); forgotten++; }
    }
    const kept: Chunk[] = [];
    for (let i = this.head; i < this.chunks.length; i++) {
      const c = this.chunks[i]!;
      if (c.until > now) { kept.push(c); continue; }
      forgotten += c.count;
      this.drop(c);
    }
    this.chunks = kept;
    this.head = 0;
    return forgotten;
  }

  private drop(c: Chunk): void {
    this.bitCount -= c.count;
    const byIndex = this.origins.get(c.origin);
    byIndex?.delete(c.index);
    if (byIndex?.size === 0) this.origins.delete(c.origin);
  }
}

/** Index of the ':' before the seq, or -1. */
function seqAt(id: string): number {
  return id.lastIndexOf(":");
}

/** The seq after `at` when it is a canonical decimal (no sign, no leading zero) safe integer, else -1. */
function seqOf(id: string, at: number): number {
  const len = id.length - at - 1;
  if (len < 1 || len > 15) return -1;
  if (len > 1 && id.charCodeAt(at + 1) === 48) return -1;
  let n = 0;
  for (let i = at + 1; i < id.length; i++) {
    const c = id.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}
