// The root's decision on a registration: who the new identity is, whether its proof holds, and where it goes.
import type { IdentityRegistry } from "../identity/registry.js";
import type { IdentityRecord } from "../identity/types.js";
import { deriveDeviceKey, sasProofProblem, x509ProofChain } from "./derive.js";
import type { EnrollmentGroup, ProvisionRequest } from "./types.js";

export type Decision =
  | { ok: true; record: IdentityRecord; created: boolean }
  | { ok: false; status: 400 | 401 | 403 | 404 | 409; message: string };

export interface DecideContext {
  hub: string;
  identities: Pick<IdentityRegistry, "self" | "get" | "put" | "verifyCertificate">;
  group: (name: string) => Promise<EnrollmentGroup | undefined>;
  now?: number;
}

/**
 * Checks the path the request came up (each entry's parent is the next one, the last hangs below the root),
 * the proof (the derived key of the enrollment group, or the key/certificate of an identity registered
 * beforehand) and the placement, then creates the identity or answers the existing one (idempotent).
 */
export async function decide(req: ProvisionRequest, ctx: DecideContext): Promise<Decision> {
  const ids = ctx.identities;
  const id = req.registrationId;
  for (let i = 0; i < req.path.length; i++) {
    const hop = ids.get(req.path[i]!);
    const above = req.path[i + 1];
    const ok = hop !== undefined && hop.edge && hop.moduleId === undefined
      && (above === undefined ? hop.parent === undefined || hop.parent === ids.self : hop.parent === above);
    if (!ok) return { ok: false, status: 403, message: `the registration's path ${req.path.join(" → ")} does not match the hierarchy at ${req.path[i]}` };
  }
  if (req.path.includes(id) || id === ids.self) return { ok: false, status: 409, message: `${id} is one of the gateways the registration came through; give the new gateway its own id` };
  const cameThrough = req.path[0] ?? ids.self;
  const existing = ids.get(id);

  if (req.group === undefined) return manual(req, ctx, existing, cameThrough);

  const group = await ctx.group(req.group);
  if (!group) return { ok: false, status: 404, message: `enrollment group "${req.group}" does not exist at the root; create it with: strata enrollment add ${req.group}` };
  if (group.status !== "enabled") return { ok: false, status: 403, message: `enrollment group "${group.name}" is disabled; enable it with: strata enrollment enable ${group.name}` };
  if (!req.sas) return { ok: false, status: 400, message: "an enrollment-group registration carries sas: a token signed with the derived key" };
  const keys = { primaryKey: deriveDeviceKey(group.primaryKey, id), secondaryKey: deriveDeviceKey(group.secondaryKey, id) };
  const problem = sasProofProblem(req.sas, ctx.hub, id, [keys.primaryKey, keys.secondaryKey], ctx.now);
  if (problem) return { ok: false, status: 401, message: `${id} in enrollment group "${group.name}": ${problem}; flash the key derived from this group for this id (strata enrollment derive)` };
  const parent = group.parent ?? cameThrough;
  if (parent !== cameThrough) {
    return { ok: false, status: 403, message: `enrollment group "${group.name}" places its gateways under ${parent}, but ${id} came through ${cameThrough}; point its provisioning file at ${parent}` };
  }
  if (existing) {
    const same = existing.auth.type === "sas" && [keys.primaryKey, keys.secondaryKey].includes(existing.auth.primaryKey);
    if (!same) return { ok: false, status: 409, message: `${id} exists at the root and was not made from enrollment group "${group.name}"; remove it first (strata identity remove ${id}) or use another id` };
    if ((existing.parent ?? ids.self) !== parent) return { ok: false, status: 409, message: `${id} exists under ${existing.parent ?? ids.self}, not ${parent}; remove it first to move it` };
    if (existing.status !== "enabled") return { ok: false, status: 403, message: `${id} is disabled at the root; enable it there to provision it again` };
    return { ok: true, record: existing, created: false };
  }
  const record = await ids.put({ id, deviceId: id, status: "enabled", edge: group.edge, parent, auth: { type: "sas", ...keys } });
  return { ok: true, record, created: true };
}

/** An identity registered beforehand (`strata identity add`): the proof is its own key or certificate. */
function manual(req: ProvisionRequest, ctx: DecideContext, existing: IdentityRecord | undefined, cameThrough: string): Decision {
  const id = req.registrationId;
  if (!existing || existing.moduleId !== undefined) return { ok: false, status: 404, message: `${id} is not registered at the root; register it first (strata identity add ${id} --edge --parent ${cameThrough}) or use an enrollment group` };
  if (existing.status !== "enabled") return { ok: false, status: 403, message: `${id} is disabled at the root; enable it there first` };
  if (req.x509) {
    const chain = x509ProofChain(req.x509, ctx.hub, id, ctx.now);
    if (typeof chain === "string") return { ok: false, status: 401, message: `${id}: ${chain}` };
    const r = ctx.identities.verifyCertificate(id, chain, ctx.now);
    if (!r.ok) return { ok: false, status: 401, message: `${id}: certificate refused (${r.reason}): ${r.detail}` };
  } else if (req.sas) {
    if (existing.auth.type !== "sas") return { ok: false, status: 401, message: `${id} authenticates with X.509 at the root; provision it with its certificate` };
    const problem = sasProofProblem(req.sas, ctx.hub, id, [existing.auth.primaryKey, existing.auth.secondaryKey], ctx.now);
    if (problem) return { ok: false, status: 401, message: `${id}: ${problem}; flash the key the root has for ${id}` };
  } else {
    return { ok: false, status: 400, message: "a registration carries sas (a token signed with the key) or x509 (certificate and signature)" };
  }
  if ((existing.parent ?? ctx.identities.self) !== cameThrough) {
    return { ok: false, status: 409, message: `${id} is registered under ${existing.parent ?? ctx.identities.self} but came through ${cameThrough}; point its provisioning file at its parent` };
  }
  return { ok: true, record: existing, created: false };
}
