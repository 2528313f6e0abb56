// Which identities belong to a child's scope, as this gateway sees it.
import { walkAuthChain } from "../identity/chain.js";
import type { IdentityRecord } from "../identity/types.js";
import type { IdentityId } from "../message.js";

export type Lookup = (id: IdentityId) => IdentityRecord | undefined;

/**
 * The records of `childId`'s whole subtree: every identity whose auth chain (up to `self`) passes through the
 * child, the child's own record included. Empty when the child is unknown or not in this gateway's scope.
 */
export function subtreeOf(childId: IdentityId, records: Iterable<IdentityRecord>, self: string, lookup: Lookup): IdentityRecord[] {
  if (!lookup(childId)) return [];
  const out: IdentityRecord[] = [];
  for (const r of records) {
    if (r.id === childId) {
      out.push(r);
      continue;
    }
    const walk = walkAuthChain(r.id, self, lookup);
    if (walk.ok && walk.chain.includes(childId)) out.push(r);
  }
  return out;
}

/** Whether `id` is `ancestor` itself or below it (walking parent links, a module's through its device). */
export function isWithin(id: IdentityId, ancestor: IdentityId, self: string, lookup: Lookup): boolean {
  if (id === ancestor) return true;
  const walk = walkAuthChain(id, self, lookup);
  return walk.ok && walk.chain.includes(ancestor);
}

/**
 * The ids on the way up from `id` as its records say, without requiring the top to be reached: used to
 * remember where a removed or moved identity sat (its former ancestors). `stopAt` ends the walk early.
 */
export function ancestorsOf(record: Pick<IdentityRecord, "id" | "deviceId" | "moduleId" | "parent">, lookup: Lookup, stopAt?: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>([record.id]);
  let next: string | undefined = record.moduleId !== undefined ? record.deviceId : record.parent;
  while (next !== undefined && !seen.has(next) && out.length < 64) {
    out.push(next);
    if (next === stopAt) break;
    seen.add(next);
    const r = lookup(next);
    if (!r) break;
    next = r.moduleId !== undefined ? r.deviceId : r.parent;
  }
  return out;
}
