// Shared fixtures for the identity tests: a registry over an in-memory Kv, keys, and token helpers.
import { generateKey, IdentityRegistry, signSas, type AccessPolicy, type IdentityRecord } from "../../../core/identity/index.js";
import { silentLogger } from "../../../core/log.js";
import { MemoryKv } from "./memory-kv.js";

export const HUB = "myhub.azure-devices.net";
export const GATEWAY_HOST = "gw1.plant.local";
export const SELF = "gw1";
/** A fixed "now" (ms) so expiry cases do not depend on the wall clock. */
export const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
export const NOW_S = NOW / 1000;

export type RecordInput = Omit<IdentityRecord, "generation" | "updatedAt">;

export function sasDevice(id: string, extra: Partial<RecordInput> = {}): RecordInput {
  const [deviceId, moduleId] = id.split("/");
  const r: RecordInput = {
    id,
    deviceId: deviceId!,
    status: "enabled",
    edge: false,
    auth: { type: "sas", primaryKey: generateKey(), secondaryKey: generateKey() },
    ...extra,
  };
  if (moduleId) r.moduleId = moduleId;
  return r;
}

export function edge(id: string, parent?: string): RecordInput {
  return sasDevice(id, parent === undefined ? { edge: true } : { edge: true, parent });
}

export interface Setup {
  registry: IdentityRegistry;
  kv: MemoryKv<IdentityRecord>;
}

export async function makeRegistry(
  records: RecordInput[],
  opts: { self?: string; policies?: AccessPolicy[]; trustedCas?: string[] } = {},
): Promise<Setup> {
  const kv = new MemoryKv<IdentityRecord>();
  const registry = new IdentityRegistry({
    self: opts.self ?? SELF,
    hubName: HUB,
    hostnames: [GATEWAY_HOST, "127.0.0.1"],
    kv,
    logger: silentLogger(),
    ...(opts.policies ? { policies: opts.policies } : {}),
    ...(opts.trustedCas ? { trustedCas: opts.trustedCas } : {}),
  });
  await registry.load();
  for (const r of records) await registry.put(r);
  return { registry, kv };
}

/** A device or module token as the Azure SDK makes it, valid for an hour after NOW unless told. */
export function deviceToken(id: string, key: string, opts: { host?: string; se?: number } = {}): string {
  const [d, m] = id.split("/");
  const resource = `${opts.host ?? HUB}/devices/${d}${m ? `/modules/${m}` : ""}`;
  return signSas({ resource, key, expirySecs: opts.se ?? NOW_S + 3600 });
}

export function keysOf(r: { auth: IdentityRecord["auth"] }): { primaryKey: string; secondaryKey: string } {
  if (r.auth.type !== "sas") throw new Error("not a SAS identity");
  return r.auth;
}
