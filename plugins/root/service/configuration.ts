import type { Hub, Identities } from "../../../core/index.js";
import { badRequest, ServiceError } from "./errors.js";
import { isObject, type JsonObject } from "./json.js";
import type { DeviceRegistry } from "./registry.js";
import { replacementPatch } from "./twins.js";

/**
 * IoT Hub's `POST /devices/{id}/applyConfigurationContent`: `{modulesContent: {"$edgeAgent": {"properties.desired":
 * {…}}, "$edgeHub": {…}, "<module>": {…}}}` becomes the desired properties of those module twins of edge device
 * `id` (replacing what was there), creating the module identities as needed. `$edgeHub` is written before
 * `$edgeAgent`, so an agent woken by its own twin reads the matching routes. Delivery down to a gateway below
 * the root is the twin path's (core/upstream): the target's agent watches its `$edgeAgent` twin.
 */
export async function applyConfigurationContent(hub: Hub, identities: Identities, registry: DeviceRegistry, deviceId: string, body: JsonObject): Promise<void> {
  const device = registry.require(deviceId);
  if (!device.edge) {
    throw new ServiceError(400, "ArgumentInvalid", `${deviceId} is not an IoT Edge device; deployments apply to devices with capabilities.iotEdge = true`);
  }
  const content = body["modulesContent"] ?? body["moduleContent"];
  if (!isObject(content)) throw badRequest("modulesContent", "is missing; send {\"modulesContent\": {\"$edgeAgent\": {\"properties.desired\": {…}}, …}}");
  const agent = content["$edgeAgent"];
  if (!isObject(agent) || !isObject(agent["properties.desired"])) {
    throw badRequest("modulesContent.$edgeAgent", "needs \"properties.desired\" with the deployment (schemaVersion, runtime, systemModules, modules)");
  }
  const desiredByModule = new Map<string, JsonObject>();
  for (const [moduleId, value] of Object.entries(content)) {
    if (!isObject(value) || !isObject(value["properties.desired"])) {
      throw badRequest(`modulesContent.${moduleId}`, "must be {\"properties.desired\": {…}}");
    }
    desiredByModule.set(moduleId, value["properties.desired"]);
  }
  const agentModules = (agent["properties.desired"] as JsonObject)["modules"];
  const names = new Set<string>(["$edgeAgent", "$edgeHub", ...desiredByModule.keys()]);
  if (isObject(agentModules)) for (const m of Object.keys(agentModules)) names.add(m);
  for (const moduleId of names) {
    if (!identities.get(`${deviceId}/${moduleId}`)) {
      await registry.put(deviceId, moduleId, { managedBy: "IotEdge" }, undefined);
    }
  }
  const order = [...desiredByModule.keys()].sort((a, b) => rank(a) - rank(b));
  for (const moduleId of order) {
    const id = `${deviceId}/${moduleId}`;
    const current = await hub.getTwin(id);
    await hub.patchDesired(id, replacementPatch(current.properties.desired, desiredByModule.get(moduleId)!));
  }
}

/** Other modules first, then `$edgeHub`, then `$edgeAgent` (the one the agent watches). */
function rank(moduleId: string): number {
  return moduleId === "$edgeAgent" ? 2 : moduleId === "$edgeHub" ? 1 : 0;
}
