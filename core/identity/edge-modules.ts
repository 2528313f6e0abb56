// IoT Hub creates the runtime's two module identities with every edge device; the root does the same.
import type { IdentityId } from "../message.js";
import { generateKey } from "./sas.js";
import type { Identities, IdentityRecord } from "./types.js";

/** The module identities of an edge device's runtime, created with the device as IoT Hub does. */
export const EDGE_SYSTEM_MODULES = ["$edgeAgent", "$edgeHub"] as const;

/**
 * Gives an edge device its `$edgeAgent` and `$edgeHub` module identities (SAS, keys generated) unless they exist;
 * existing ones keep their keys. For the registry of record (the root) only: a child receives them by scope sync.
 * Returns the records created (none for a non-edge device or a module).
 */
export async function ensureEdgeModules(identities: Pick<Identities, "get" | "put">, device: IdentityRecord): Promise<IdentityRecord[]> {
  if (!device.edge || device.moduleId !== undefined) return [];
  const created: IdentityRecord[] = [];
  for (const moduleId of EDGE_SYSTEM_MODULES) {
    const id: IdentityId = `${device.deviceId}/${moduleId}`;
    if (identities.get(id)) continue;
    created.push(await identities.put({
      id, deviceId: device.deviceId, moduleId, status: "enabled", edge: false, parent: device.deviceId,
      auth: { type: "sas", primaryKey: generateKey(), secondaryKey: generateKey() },
    }));
  }
  return created;
}
