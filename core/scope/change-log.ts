// The parent side's memory of identity changes, so each child can be told only what changed in its subtree.
import { randomBytes } from "node:crypto";
import type { IdentityEvent, IdentityRecord } from "../identity/types.js";
import type { IdentityId } from "../message.js";
import { ancestorsOf, subtreeOf, type Lookup } from "./subtree.js";
import type { ScopeAnswer } from "./types.js";

/** What the change log needs of the registry. */
export interface IdentitySource {
  readonly self: string;
  get(id: IdentityId): IdentityRecord | undefined;
  list(): IdentityRecord[];
  on(listener: (e: IdentityEvent) => void): () => void;
}

interface Departure {
  seq: number;
  id: IdentityId;
  /** Where the identity sat before it was removed or moved: the children whose subtree it may have left. */
  formerAncestors: string[];
}

export interface ScopeChangeLogOptions {
  /** Removals (and moves) remembered; a child whose cursor is older gets a full snapshot. Default 10 000. */
  maxDepartures?: number;
}

/**
 * A sequence number per identity change (in memory; a restart starts a new epoch, and every child then
 * resyncs in full once), plus a bounded log of departures: identities removed, or moved out from under a
 * gateway. Answers are computed from the registry's current state, so a child never sees a stale record.
 */
export class ScopeChangeLog {
  readonly epoch = randomBytes(8).toString("hex");
  /** Starts at 1: a cursor of 0 always means "never synced" (full snapshot), even before the first change. */
  private seq = 1;
  /** Sequence of the last change per present identity; absent = unchanged since this epoch began (0). */
  private readonly lastChange = new Map<IdentityId, number>();
  private departures: Departure[] = [];
  /** Departures at or below this sequence were dropped from the log. */
  private floor = 0;
  private readonly maxDepartures: number;
  private readonly waiters = new Set<() => void>();
  private readonly unsubscribe: () => void;
  private readonly lookup: Lookup;

  constructor(private readonly identities: IdentitySource, opts: ScopeChangeLogOptions = {}) {
    this.maxDepartures = opts.maxDepartures ?? 10_000;
    this.lookup = (id) => identities.get(id);
    this.unsubscribe = identities.on((e) => this.record(e));
  }

  get cursor(): number {
    return this.seq;
  }

  /**
   * What changed in `childId`'s subtree after `since` (a cursor of this `epoch`), or undefined when nothing
   * did. A cursor of 0, of another epoch, or older than the departure log gets a full snapshot.
   */
  answer(childId: IdentityId, since: number, epoch: string | undefined): ScopeAnswer | undefined {
    const subtree = subtreeOf(childId, this.identities.list(), this.identities.self, this.lookup);
    if (since <= 0 || epoch !== this.epoch || since < this.floor || since > this.seq) {
      return { epoch: this.epoch, cursor: this.seq, full: true, records: subtree, removed: [] };
    }
    const records = subtree.filter((r) => (this.lastChange.get(r.id) ?? 0) > since);
    const present = new Set(subtree.map((r) => r.id));
    const removed = new Set<string>();
    for (const d of this.departures) {
      if (d.seq > since && !present.has(d.id) && (d.id === childId || d.formerAncestors.includes(childId))) removed.add(d.id);
    }
    if (records.length === 0 && removed.size === 0) return undefined;
    return { epoch: this.epoch, cursor: this.seq, full: false, records, removed: [...removed] };
  }

  /** Resolves at the next identity change, after `timeoutMs`, or when `signal` aborts, whichever is first. */
  nextChange(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
      if (signal?.aborted) done();
    });
  }

  /** Releases every waiter and stops listening to the registry. */
  close(): void {
    this.unsubscribe();
    for (const w of [...this.waiters]) w();
  }

  private record(e: IdentityEvent): void {
    const seq = ++this.seq;
    const { record } = e;
    if (e.type === "removed") {
      this.lastChange.delete(record.id);
      this.depart(seq, record.id, ancestorsOf(record, this.lookup));
      // Its descendants stay in the registry but hang from nothing now: they left every subtree above.
      this.touchDescendants(seq, record, true);
    } else {
      this.lastChange.set(record.id, seq);
      const before = e.previous && ancestorsOf(e.previous, this.lookup);
      const after = ancestorsOf(record, this.lookup);
      if (before && before.join(";") !== after.join(";")) {
        this.depart(seq, record.id, before);
        this.touchDescendants(seq, e.previous!, false);
      }
    }
    for (const w of [...this.waiters]) w();
  }

  /** Marks everything below `moved` as changed and departed from where `moved` used to sit. */
  private touchDescendants(seq: number, moved: IdentityRecord, removed: boolean): void {
    const formerTop = ancestorsOf(moved, this.lookup);
    for (const r of this.identities.list()) {
      if (r.id === moved.id) continue;
      const path = ancestorsOf(r, this.lookup, moved.id);
      if (path[path.length - 1] !== moved.id) continue;
      if (!removed) this.lastChange.set(r.id, seq);
      this.depart(seq, r.id, [...path, ...formerTop]);
    }
  }

  private depart(seq: number, id: IdentityId, formerAncestors: string[]): void {
    this.departures.push({ seq, id, formerAncestors });
    if (this.departures.length > this.maxDepartures) {
      const drop = this.departures.length - this.maxDepartures;
      this.floor = this.departures[drop - 1]!.seq;
      this.departures = this.departures.slice(drop);
    }
  }
}
