// Auth chains: the path from an identity up to the gateway acting for it (`leaf;gwL3;gwL2`).
import type { IdentityId } from "../message.js";
import type { IdentityRecord } from "./types.js";

/**
 * Longest chain walked. Five gateway layers is the floor, not the ceiling, so this is generous; it exists
 * only so a corrupt parent loop (a → b → a) cannot spin. Cycles are also caught by a visited set.
 */
export const MAX_CHAIN_LENGTH = 32;

export type ChainWalk = { ok: true; chain: string[] } | { ok: false; detail: string };

/**
 * Walks `parent` links from `id` up to `self` (a module's next hop is always its device). An identity with
 * no parent hangs directly under the root, so it is in scope only when `self` is the root.
 */
export function walkAuthChain(
  id: IdentityId,
  self: string,
  lookup: (id: IdentityId) => IdentityRecord | undefined,
): ChainWalk {
  if (id === self) return { ok: true, chain: [self] };
  const selfIsRoot = lookup(self)?.parent === undefined;
  const chain: string[] = [];
  const seen = new Set<string>();
  let current: string | undefined = id;
  while (current !== undefined && current !== self) {
    if (seen.has(current)) return { ok: false, detail: `parent links loop at ${current}` };
    if (chain.length >= MAX_CHAIN_LENGTH) return { ok: false, detail: `auth chain of ${id} is longer than ${MAX_CHAIN_LENGTH}` };
    const record = lookup(current);
    if (!record) return { ok: false, detail: `${current} is not a known identity` };
    seen.add(current);
    chain.push(record.id);
    current = record.moduleId !== undefined ? record.deviceId : record.parent;
  }
  if (current === undefined && !selfIsRoot) {
    return { ok: false, detail: `${id} is not below ${self}` };
  }
  chain.push(self);
  return { ok: true, chain };
}

export function sameId(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
