// Twins on a child gateway: the local twin is a cache of the parent's (versions are the root's), reported
// patches made here wait durably until the parent has them, and a desired state missed while offline is
// reconciled by version. Pure helpers and the pending-patch store; the hub wires them.
import type { IdentityId } from "../message.js";
import type { Kv } from "../store/types.js";
import type { TwinProperties } from "./types.js";
import { KeyedSerial } from "./keyed-serial.js";

/** A twin as the parent answers a GET: both property sets and the twin's version. */
export interface TwinDocument {
  desired: TwinProperties;
  reported: TwinProperties;
  version?: number;
}

/**
 * The parent's twin service as a child's hub sees it (implemented by the upstream link). Both calls resolve
 * `undefined` when the parent cannot be asked now (offline, link refused): the hub then works from its cache.
 */
export interface TwinParent {
  getTwin(id: IdentityId): Promise<TwinDocument | undefined>;
  /** Sends a reported patch up; resolves with the parent's new reported `$version`. */
  patchReported(id: IdentityId, patch: Record<string, unknown>): Promise<number | undefined>;
}

/**
 * Adds `patch` to an accumulated patch, keeping nulls (they delete at the parent) — unlike mergePatch, which
 * applies them. Later values win, so the parent ends with the last value of every key.
 */
export function accumulatePatch(into: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith("$")) continue;
    const current = into[key];
    if (isPlainObject(value) && isPlainObject(current)) accumulatePatch(current, value);
    else into[key] = clone(value);
  }
}

/**
 * The patch that turns `from` into `to` (both property sets): changed or new keys with their new value,
 * vanished keys as null. `$`-keys are left out; the caller sets `$version`.
 */
export function diffProperties(from: Record<string, unknown>, to: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(to)) {
    if (key.startsWith("$")) continue;
    const before = from[key];
    if (isPlainObject(value) && isPlainObject(before)) {
      const inner = diffProperties(before, value);
      if (Object.keys(inner).length > 0) patch[key] = inner;
    } else if (JSON.stringify(before) !== JSON.stringify(value)) patch[key] = clone(value);
  }
  for (const key of Object.keys(from)) {
    if (!key.startsWith("$") && !(key in to)) patch[key] = null;
  }
  return patch;
}

interface Pending {
  patch: Record<string, unknown>;
  /** Bumped on every added patch: a flush removes the entry only if nothing was added meanwhile. */
  seq: number;
}

/** Reported patches not yet acknowledged by the parent, one merged patch per identity, on disk. */
export class PendingReported {
  private readonly serials = new KeyedSerial<IdentityId>();

  constructor(private readonly kv: Kv<Pending>) {}

  add(id: IdentityId, patch: Record<string, unknown>): Promise<void> {
    return this.serials.run(id, async () => {
      const current = (await this.kv.get(id)) ?? { patch: {}, seq: 0 };
      accumulatePatch(current.patch, patch);
      current.seq += 1;
      await this.kv.put(id, current);
    });
  }

  get(id: IdentityId): Promise<Pending | undefined> {
    return this.kv.get(id);
  }

  /** Removes the entry if it is still the one of `seq` (nothing added since it was read). */
  settle(id: IdentityId, seq: number): Promise<boolean> {
    return this.serials.run(id, async () => {
      const current = await this.kv.get(id);
      if (!current || current.seq !== seq) return false;
      await this.kv.del(id);
      return true;
    });
  }

  async ids(): Promise<IdentityId[]> {
    const out: IdentityId[] = [];
    for await (const [id] of this.kv.entries()) out.push(id);
    return out;
  }
}

function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
