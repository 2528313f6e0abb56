// Fixtures for the scope tests: a registry over an in-memory Kv, records, and tokens.
import { generateKey, IdentityRegistry, signSas, type IdentityRecord } from "../../../core/identity/index.js";
import { silentLogger } from "../../../core/log.js";
import type { Kv } from "../../../core/store/types.js";

export const HUB = "testhub";

export class MemoryKv<V> implements Kv<V> {
  readonly data = new Map<string, V>();
  async get(key: string): Promise<V | undefined> {
    return this.data.get(key);
  }
  async put(key: string, value: V): Promise<void> {
    this.data.set(key, structuredClone(value));
  }
  async del(key: string): Promise<void> {
    this.data.delete(key);
  }
  async *entries(prefix = ""): AsyncIterable<[string, V]> {
    for (const key of [...this.data.keys()].sort()) if (key.startsWith(prefix)) yield [key, structuredClone(this.data.get(key)!)];
  }
}

export type RecordInput = Omit<IdentityRecord, "generation" | "updatedAt">;

export function device(id: string, parent?: string, extra: Partial<RecordInput> = {}): RecordInput {
  const [deviceId, moduleId] = id.split("/");
  return {
    id,
    deviceId: deviceId!,
    ...(moduleId ? { moduleId } : {}),
    status: "enabled",
    edge: false,
    auth: { type: "sas", primaryKey: generateKey(), secondaryKey: generateKey() },
    ...(parent !== undefined && !moduleId ? { parent } : {}),
    ...extra,
  };
}

export function edge(id: string, parent?: string): RecordInput {
  return device(id, parent, { edge: true });
}

export async function registry(self: string, records: RecordInput[], opts: { ownerKey?: string } = {}): Promise<IdentityRegistry> {
  const r = new IdentityRegistry({
    self,
    hubName: HUB,
    hostnames: ["localhost"],
    kv: new MemoryKv<IdentityRecord>(),
    logger: silentLogger(),
    ...(opts.ownerKey ? { policies: [{ name: "iothubowner", primaryKey: opts.ownerKey, rights: ["RegistryWrite"] }] } : {}),
  });
  await r.load();
  for (const rec of records) await r.put(rec);
  return r;
}

export function tokenFor(reg: IdentityRegistry, id: string, expirySecs = Math.floor(Date.now() / 1000) + 600): string {
  const rec = reg.get(id);
  if (!rec || rec.auth.type !== "sas") throw new Error(`no SAS record ${id}`);
  return signSas({ resource: `${HUB}/devices/${id}`, key: rec.auth.primaryKey, expirySecs });
}

/**
 * root ─┬─ gwA ─┬─ gwA1 ── leafA1
 *       │       ├─ leafA (+ module leafA/m)
 *       └─ gwB ── leafB
 *       leafRoot
 */
export function tree(): RecordInput[] {
  return [
    edge("gwA"), edge("gwB"), device("leafRoot"),
    edge("gwA1", "gwA"), device("leafA", "gwA"), device("leafA/m"),
    device("leafA1", "gwA1"), device("leafB", "gwB"),
  ];
}
