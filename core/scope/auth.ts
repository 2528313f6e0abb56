// Who is calling a `/$strata/*` route: this gateway itself (its CLI), a direct child gateway, or the owner.
import type { IdentityRegistry } from "../identity/registry.js";
import { SAS_CLOCK_SKEW_SECS } from "../identity/registry.js";
import { decodeSig, identityFromSasToken, parseResource, signatureMatches, tryParseSasToken } from "../identity/sas.js";

export type Requester =
  | { kind: "self"; id: string }
  | { kind: "child"; id: string }
  | { kind: "owner"; id: string };

export type AuthOutcome = { ok: true; requester: Requester } | { ok: false; status: 401 | 403; message: string };

export interface AuthContext {
  identities: Pick<IdentityRegistry, "self" | "get" | "verifySas" | "verifyService">;
  hubName: string;
  /** Token audiences accepted besides the hub name (this gateway's host names). */
  hostnames: readonly string[];
  /** This gateway's own key (`[identity] key_file`); a token signed with it is this gateway's CLI. */
  selfKey?: string;
  isRoot: boolean;
}

/**
 * Authenticates the `Authorization` header. A device token for this gateway's own id is checked against its key
 * file (so the CLI works before the first scope sync, and on a root without its own record); a device token
 * for anything else must belong to a direct child edge gateway; a policy token (`skn=`) is accepted on the root
 * only, for `iothubowner` (RegistryWrite).
 */
export function authenticate(header: string | undefined, ctx: AuthContext, now = Date.now()): AuthOutcome {
  if (!header) return { ok: false, status: 401, message: "no Authorization header: send a SAS token (SharedAccessSignature sr=…&sig=…&se=…)" };
  const parsed = tryParseSasToken(header);
  if (!parsed.ok) return { ok: false, status: 401, message: `malformed SAS token: ${parsed.detail}` };
  if (parsed.token.skn !== undefined) {
    if (!ctx.isRoot) return { ok: false, status: 403, message: "a service policy token is accepted on the root only; use this gateway's own identity token" };
    const r = ctx.identities.verifyService(header, "RegistryWrite", now);
    return r.ok ? { ok: true, requester: { kind: "owner", id: r.principal.id } } : { ok: false, status: 401, message: `service token refused (${r.reason}): ${r.detail}` };
  }
  const who = identityFromSasToken(header);
  if (!who) return { ok: false, status: 401, message: "the token's resource is not {hub}/devices/{id}" };
  const self = ctx.identities.self;
  if (who.id === self && ctx.selfKey !== undefined) {
    const problem = selfTokenProblem(header, ctx, now);
    return problem ? { ok: false, status: 401, message: `token for ${self} refused: ${problem}` } : { ok: true, requester: { kind: "self", id: self } };
  }
  const r = ctx.identities.verifySas(who.id, header, now);
  if (!r.ok) return { ok: false, status: 401, message: `token for ${who.id} refused (${r.reason}): ${r.detail}` };
  if (r.principal.id === self) return { ok: true, requester: { kind: "self", id: self } };
  const record = ctx.identities.get(r.principal.id);
  // On the root, an identity with no parent hangs directly below it (IoT Hub's devices without a scope).
  const below = record !== undefined && (record.parent === self || (record.parent === undefined && ctx.isRoot));
  if (!record || record.moduleId !== undefined || !record.edge || !below) {
    return { ok: false, status: 403, message: `${r.principal.id} is not a child gateway of ${self} (an edge identity whose parent is ${self})` };
  }
  return { ok: true, requester: { kind: "child", id: record.id } };
}

/** Checks a device token for this gateway's own id against its key file; a reason when it fails. */
function selfTokenProblem(token: string, ctx: AuthContext, now: number): string | undefined {
  const parsed = tryParseSasToken(token);
  if (!parsed.ok) return parsed.detail;
  const resource = parseResource(parsed.token.sr);
  if (!resource.ok) return resource.detail;
  const audiences = [ctx.hubName, ...ctx.hostnames].map((h) => h.toLowerCase());
  if (!audiences.includes(resource.host.toLowerCase())) return `audience "${resource.host}" is neither the hub name nor a host name of this gateway`;
  if (parsed.token.se + SAS_CLOCK_SKEW_SECS < now / 1000) return "expired";
  const sig = decodeSig(parsed.token.sig);
  if (!sig || !signatureMatches(parsed.token, sig, [ctx.selfKey])) return "signature does not match [identity] key_file";
  return undefined;
}
