/**
 * A double-ended queue on a growable ring buffer: O(1) push/shift/unshift, which an Array's shift is not
 * once a backlog holds millions of entries.
 */
export class Deque<T> {
  private buf: (T | undefined)[] = new Array(8);
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(v: T): void {
    if (this.count === this.buf.length) this.grow();
    this.buf[(this.head + this.count) % this.buf.length] = v;
    this.count++;
  }

  unshift(v: T): void {
    if (this.count === this.buf.length) this.grow();
    this.head = (this.head - 1 + this.buf.length) % this.buf.length;
    this.buf[this.head] = v;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const v = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) % this.buf.length;
    this.count--;
    return v;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.buf[this.head];
  }

  at(i: number): T | undefined {
    return i < 0 || i >= this.count ? undefined : this.buf[(this.head + i) % this.buf.length];
  }

  /** Inserts at index i (0 = front); O(n), for the rare release of a lease behind newer ones. */
  insertAt(i: number, v: T): void {
    if (i <= 0) return this.unshift(v);
    if (i >= this.count) return this.push(v);
    const items = this.toArray();
    items.splice(i, 0, v);
    this.buf = new Array(Math.max(8, items.length * 2));
    items.forEach((x, j) => (this.buf[j] = x));
    this.head = 0;
    this.count = items.length;
  }

  /** Removes every item for which `drop` is true; O(n). */
  removeWhere(drop: (v: T) => boolean): number {
    const keep = this.toArray().filter((v) => !drop(v));
    const removed = this.count - keep.length;
    if (removed === 0) return 0;
    this.buf = new Array(Math.max(8, keep.length * 2));
    keep.forEach((x, j) => (this.buf[j] = x));
    this.head = 0;
    this.count = keep.length;
    return removed;
  }

  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.buf[(this.head + i) % this.buf.length] as T);
    return out;
  }

  private grow(): void {
    const next: (T | undefined)[] = new Array(this.buf.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = this.buf[(this.head + i) % this.buf.length];
    this.buf = next;
    this.head = 0;
  }
}
