// `POST /$strata/identities`: what a registration may ask for, and whether the requester may ask for it.
import { z } from "zod";
import { generateKey } from "../identity/sas.js";
import type { Authentication, IdentityRecord } from "../identity/types.js";
import type { Requester } from "./auth.js";
import { isWithin, type Lookup } from "./subtree.js";

const sasAuth = z.strictObject({ type: z.literal("sas"), primaryKey: z.string().optional(), secondaryKey: z.string().optional() });
const thumbprintAuth = z.strictObject({ type: z.literal("selfSigned"), primaryThumbprint: z.string(), secondaryThumbprint: z.string().optional() });
const caAuth = z.strictObject({ type: z.literal("certificateAuthority") });

/** The body: an identity record; `auth` omitted (or SAS without keys) means "generate keys at the root". */
export const registrationSchema = z.strictObject({
  id: z.string().min(1).optional(),
  deviceId: z.string().min(1),
  moduleId: z.string().min(1).optional(),
  edge: z.boolean().default(false),
  parent: z.string().min(1).optional(),
  status: z.enum(["enabled", "disabled"]).default("enabled"),
  auth: z.discriminatedUnion("type", [sasAuth, thumbprintAuth, caAuth]).optional(),
  // A record read back from a gateway may carry these; they are decided by the root, so they are ignored.
  generation: z.number().optional(),
  updatedAt: z.number().optional(),
});
export type Registration = z.output<typeof registrationSchema>;

export type Verdict = { ok: true } | { ok: false; status: 400 | 403 | 409; message: string };

/** The id a registration names (deviceId or deviceId/moduleId), checked against `id` when it is given. */
export function registrationId(r: Registration): string | Verdict {
  const id = r.moduleId === undefined ? r.deviceId : `${r.deviceId}/${r.moduleId}`;
  if (r.id !== undefined && r.id !== id) return { ok: false, status: 400, message: `id "${r.id}" does not match deviceId/moduleId ("${id}")` };
  return id;
}

/**
 * Whether `requester` may register `r` here. A child gateway may register identities under itself or anywhere
 * in its subtree; this gateway's own CLI and the owner may register anything this gateway can see (on a
 * non-root gateway the root decides in the end, against this gateway's subtree). An id that exists under another
 * parent is a conflict, never a silent move.
 */
export function checkRegistration(r: Registration, id: string, requester: Requester, self: string, lookup: Lookup, atRoot: boolean): Verdict {
  // A module hangs from its device; anything else from its parent (absent: directly under the root).
  const anchor = r.moduleId !== undefined ? r.deviceId : r.parent;
  if (requester.kind === "child") {
    if (anchor === undefined || !isWithin(anchor, requester.id, self, lookup)) {
      return { ok: false, status: 403, message: `${requester.id} may register identities only in its own scope; ${id} would hang from ${anchor ?? "the root"}` };
    }
    if (id === requester.id) return { ok: false, status: 403, message: `${requester.id} cannot register itself again` };
  }
  if (r.moduleId !== undefined && r.parent !== undefined && r.parent !== r.deviceId) {
    return { ok: false, status: 400, message: `a module's parent is its device "${r.deviceId}"; omit parent or set it to that` };
  }
  const existing = lookup(id);
  if (existing && existing.parent !== (r.moduleId !== undefined ? existing.parent : r.parent)) {
    return { ok: false, status: 409, message: `${id} already exists under ${existing.parent ?? "the root"}; remove it first to move it` };
  }
  if (atRoot && r.moduleId === undefined && r.parent !== undefined && r.parent !== self) {
    const parent = lookup(r.parent);
    if (!parent || !parent.edge || parent.moduleId !== undefined) {
      return { ok: false, status: 409, message: `parent ${r.parent} of ${id} is not a known edge device; register the parent gateway first` };
    }
  }
  if (r.moduleId !== undefined && !lookup(r.deviceId)) {
    return { ok: false, status: 409, message: `module ${id}: its device ${r.deviceId} does not exist; register the device first` };
  }
  return { ok: true };
}

/** The record the root stores: keys generated when none were given; an existing record keeps its keys. */
export function recordToStore(r: Registration, id: string, existing: IdentityRecord | undefined): Omit<IdentityRecord, "generation" | "updatedAt"> {
  let auth: Authentication;
  if (r.auth === undefined) {
    auth = existing?.auth ?? { type: "sas", primaryKey: generateKey(), secondaryKey: generateKey() };
  } else if (r.auth.type === "sas") {
    const old = existing?.auth.type === "sas" ? existing.auth : undefined;
    auth = { type: "sas", primaryKey: r.auth.primaryKey || old?.primaryKey || generateKey(), secondaryKey: r.auth.secondaryKey || old?.secondaryKey || generateKey() };
  } else {
    auth = r.auth.type === "selfSigned"
      ? { type: "selfSigned", primaryThumbprint: r.auth.primaryThumbprint, ...(r.auth.secondaryThumbprint ? { secondaryThumbprint: r.auth.secondaryThumbprint } : {}) }
      : { type: "certificateAuthority" };
  }
  return {
    id,
    deviceId: r.deviceId,
    ...(r.moduleId !== undefined ? { moduleId: r.moduleId } : {}),
    status: r.status,
    auth,
    edge: r.edge,
    ...(r.moduleId === undefined && r.parent !== undefined ? { parent: r.parent } : {}),
  };
}
