// The child side of scope sync: long-poll the parent for this gateway's subtree and keep a local copy, so
// devices authenticate here while the parent is away.
import { StrataError } from "../errors.js";
import type { IdentityRegistry } from "../identity/registry.js";
import type { IdentityRecord } from "../identity/types.js";
import type { Logger } from "../log.js";
import type { Kv } from "../store/types.js";
import { errorText, GatewayUnreachable, type GatewayClient } from "./https-client.js";
import { SCOPE_PATH, type ScopeAnswer } from "./types.js";

export interface SyncCursor {
  epoch: string;
  since: number;
}

export interface ScopeSyncOptions {
  client: Pick<GatewayClient, "request" | "target">;
  identities: Pick<IdentityRegistry, "self" | "get" | "list" | "put" | "remove">;
  /** Where the cursor survives restarts. */
  kv: Kv<SyncCursor>;
  logger: Logger;
  /** How long the parent may hold a poll open (seconds). Default 25. */
  waitSecs?: number;
  /** Backoff cap while the parent is away. Default 4000 ms. */
  backoffCapMs?: number;
}

export interface ScopeSyncState {
  /** "connected": the last poll was answered; "offline": the parent did not answer (or refused). */
  state: "starting" | "connected" | "offline";
  since: number;
  lastSyncAt: number | null;
  lastError: string | null;
  /** Records written and removed locally since start. */
  applied: number;
  removed: number;
  /**
   * The parent's clock minus this gateway's (ms), from the `Date` header of the last answered poll: positive
   * when this gateway is behind. Good to about a second (the header's resolution). null until the first answer.
   */
  clockOffsetMs: number | null;
}

/** Beyond this offset from the parent a warning is logged (SAS tokens tolerate 300 s; plant layers often lack NTP). */
export const CLOCK_WARN_MS = 60_000;

/**
 * The parent's clock minus ours from one answer: its `Date` (truncated to the second, so +500 ms on average)
 * against when its headers arrived here. The header is written when the answer goes out — for a long poll at
 * its end, not its start — so the arrival time, not the request time, is the one to compare with.
 */
export function clockOffset(res: { date?: number; sentAt?: number; receivedAt?: number }): number | undefined {
  if (res.date === undefined || res.receivedAt === undefined) return undefined;
  return Math.round(res.date + 500 - res.receivedAt);
}

const CURSOR_KEY = "cursor";

/** Records equal in everything the parent decides (generation and updatedAt are local bookkeeping). */
export function sameRecord(a: IdentityRecord, b: IdentityRecord): boolean {
  const strip = ({ generation: _g, updatedAt: _u, ...rest }: IdentityRecord) => rest;
  return JSON.stringify(sortKeys(strip(a))) === JSON.stringify(sortKeys(strip(b)));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)]));
  return v;
}

/**
 * Applies one answer to the local registry: puts what changed (keeping the parent's generation), removes what
 * left, and on a full answer drops every local record the parent no longer lists. Returns the counts.
 */
export async function applyScopeAnswer(identities: ScopeSyncOptions["identities"], answer: ScopeAnswer): Promise<{ applied: number; removed: number }> {
  let applied = 0;
  let removed = 0;
  for (const r of answer.records) {
    const local = identities.get(r.id);
    if (local && sameRecord(local, r)) continue;
    const { updatedAt: _u, ...fields } = r;
    await identities.put(fields);
    applied++;
  }
  const gone = new Set(answer.removed);
  if (answer.full) {
    const listed = new Set(answer.records.map((r) => r.id));
    for (const local of identities.list()) if (!listed.has(local.id)) gone.add(local.id);
  }
  for (const id of gone) {
    if (!identities.get(id)) continue;
    await identities.remove(id);
    removed++;
  }
  return { applied, removed };
}

export class ScopeSync {
  private cursor: SyncCursor = { epoch: "", since: 0 };
  private readonly abort = new AbortController();
  private loop?: Promise<void>;
  private current: ScopeSyncState = { state: "starting", since: 0, lastSyncAt: null, lastError: null, applied: 0, removed: 0, clockOffsetMs: null };
  private warnedClock = false;
  private readonly listeners = new Set<(s: ScopeSyncState) => void>();
  private readonly waitSecs: number;
  private readonly backoffCapMs: number;

  constructor(private readonly opts: ScopeSyncOptions) {
    this.waitSecs = opts.waitSecs ?? 25;
    this.backoffCapMs = opts.backoffCapMs ?? 4000;
  }

  /** Loads the stored cursor and starts polling in the background. */
  async start(): Promise<void> {
    const stored = await this.opts.kv.get(CURSOR_KEY);
    if (stored && typeof stored.since === "number" && typeof stored.epoch === "string") this.cursor = stored;
    this.current.since = this.cursor.since;
    this.loop ??= this.run();
  }

  state(): ScopeSyncState {
    return { ...this.current };
  }

  /** Called after every poll outcome (answered or failed). Returns an unsubscribe function. */
  on(listener: (s: ScopeSyncState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Ends the poll in flight and the loop. Idempotent. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const log = this.opts.logger;
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        const path = `${SCOPE_PATH}?since=${this.cursor.since}&epoch=${encodeURIComponent(this.cursor.epoch)}&wait=${this.waitSecs}`;
        const res = await this.opts.client.request("GET", path, undefined, { timeoutMs: (this.waitSecs + 15) * 1000, signal: this.abort.signal });
        if (res.status !== 200) {
          throw new StrataError("STRATA_SCOPE_SYNC_REFUSED", `the parent answered ${res.status} to scope sync: ${errorText(res.body)}; check that this gateway is registered at its parent as an edge child (strata child add) and that [identity] key_file holds its key`);
        }
        const answer = res.body as ScopeAnswer;
        const offset = clockOffset(res);
        if (offset !== undefined) this.noteClock(offset);
        const counts = await applyScopeAnswer(this.opts.identities, answer);
        this.cursor = { epoch: answer.epoch, since: answer.cursor };
        await this.opts.kv.put(CURSOR_KEY, this.cursor);
        if (counts.applied || counts.removed || answer.full) {
          log.info({ full: answer.full, applied: counts.applied, removed: counts.removed, cursor: answer.cursor }, "scope synced from parent");
        }
        if (failures > 0) log.info({ parent: this.opts.client.target, failures }, "scope sync reconnected");
        failures = 0;
        this.current = {
          ...this.current, state: "connected", since: answer.cursor, lastSyncAt: Date.now(), lastError: null,
          applied: this.current.applied + counts.applied, removed: this.current.removed + counts.removed,
        };
        this.emit();
      } catch (err) {
        if (this.abort.signal.aborted) break;
        failures++;
        const message = (err as Error).message;
        // The first failure is worth a warning; the rest of an outage repeats it at debug only.
        if (failures === 1) log.warn({ err, parent: this.opts.client.target, unreachable: err instanceof GatewayUnreachable }, "scope sync failed, serving from the local cache");
        else log.debug({ err, failures }, "scope sync still failing");
        this.current = { ...this.current, state: "offline", lastError: message };
        this.emit();
        await this.sleep(backoff(failures, this.backoffCapMs));
      }
    }
  }

  private noteClock(offset: number): void {
    this.current = { ...this.current, clockOffsetMs: offset };
    const far = Math.abs(offset) > CLOCK_WARN_MS;
    if (far && !this.warnedClock) {
      this.opts.logger.warn({ parent: this.opts.client.target, clockOffsetMs: offset }, "clock differs from the parent's");
    } else if (!far && this.warnedClock) {
      this.opts.logger.info({ clockOffsetMs: offset }, "clock agrees with the parent's again");
    }
    this.warnedClock = far;
  }

  private emit(): void {
    for (const l of this.listeners) {
      try {
        l(this.state());
      } catch (err) {
        this.opts.logger.error({ err }, "scope sync listener failed");
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.abort.signal.addEventListener("abort", done, { once: true });
    });
  }
}

/** Jittered exponential backoff from 250 ms, capped: a parent that comes back is found within the cap. */
export function backoff(failures: number, capMs: number): number {
  const base = Math.min(capMs, 250 * 2 ** Math.min(failures - 1, 10));
  return Math.round(base / 2 + Math.random() * (base / 2));
}
