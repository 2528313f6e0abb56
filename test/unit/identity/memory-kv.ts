// A tiny in-memory Kv for the identity tests: the store's contract (writes visible once resolved, entries
// in key order) without the disk.
import type { Kv } from "../../../core/store/types.js";

export class MemoryKv<V> implements Kv<V> {
  readonly data = new Map<string, V>();
  /** Writes seen, in order: lets a test check write-through before a change became visible. */
  readonly writes: Array<{ op: "put" | "del"; key: string }> = [];
  /** When set, the next write rejects with it (a full or failing disk). */
  failNext: Error | undefined;

  async get(key: string): Promise<V | undefined> {
    return this.data.get(key);
  }
  async put(key: string, value: V): Promise<void> {
    this.checkFail();
    this.writes.push({ op: "put", key });
    this.data.set(key, structuredClone(value));
  }
  async del(key: string): Promise<void> {
    this.checkFail();
    this.writes.push({ op: "del", key });
    this.data.delete(key);
  }
  async *entries(prefix = ""): AsyncIterable<[string, V]> {
    for (const key of [...this.data.keys()].sort()) {
      if (key.startsWith(prefix)) yield [key, structuredClone(this.data.get(key)!)];
    }
  }
  private checkFail(): void {
    const err = this.failNext;
    this.failNext = undefined;
    if (err) throw err;
  }
}
