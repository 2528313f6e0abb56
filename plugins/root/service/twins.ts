import type { Hub, Twin } from "../../../core/index.js";
import { badRequest, ServiceError } from "./errors.js";
import { etagOf, ifMatch } from "./etag.js";
import { isObject, optionalObject, type JsonObject } from "./json.js";
import type { DeviceRegistry } from "./registry.js";

/**
 * Twins as IoT Hub's service API shows them. The service may change tags and desired properties (PATCH
 * merges with null deleting, PUT replaces); reported properties belong to the device.
 */
export class TwinService {
  constructor(
    private readonly hub: Hub,
    private readonly registry: DeviceRegistry,
  ) {}

  async get(deviceId: string, moduleId?: string): Promise<JsonObject> {
    const record = this.registry.require(deviceId, moduleId);
    return this.json(await this.hub.getTwin(record.id), await this.registry.view(record));
  }

  async patch(deviceId: string, moduleId: string | undefined, body: JsonObject, ifMatchHeader: string | string[] | undefined): Promise<JsonObject> {
    const { desired, tags } = readTwinBody(body);
    const id = await this.checkEtag(deviceId, moduleId, ifMatchHeader);
    return this.apply(id, desired ?? {}, tags);
  }

  /** PUT replaces tags and desired properties: keys left out are deleted. */
  async replace(deviceId: string, moduleId: string | undefined, body: JsonObject, ifMatchHeader: string | string[] | undefined): Promise<JsonObject> {
    const { desired, tags } = readTwinBody(body);
    const id = await this.checkEtag(deviceId, moduleId, ifMatchHeader);
    const current = await this.hub.getTwin(id);
    return this.apply(id, replacementPatch(current.properties.desired, desired ?? {}), replacementPatch(current.tags, tags ?? {}));
  }

  private async apply(id: string, desired: JsonObject, tags: JsonObject | undefined): Promise<JsonObject> {
    const twin = await this.hub.patchDesired(id, desired, tags);
    const record = this.registry.require(twin.deviceId, twin.moduleId);
    return this.json(twin, await this.registry.view(record));
  }

  private async checkEtag(deviceId: string, moduleId: string | undefined, header: string | string[] | undefined): Promise<string> {
    const record = this.registry.require(deviceId, moduleId);
    const etag = ifMatch(header);
    if (etag !== undefined) {
      const twin = await this.hub.getTwin(record.id);
      if (etag !== etagOf(twin.version)) {
        throw new ServiceError(412, "PreconditionFailed",
          `If-Match "${etag}" does not match the twin's etag "${etagOf(twin.version)}" of ${record.id}; GET the twin again and retry`);
      }
    }
    return record.id;
  }

  private json(twin: Twin, device: JsonObject): JsonObject {
    const auth = device["authentication"] as JsonObject;
    return {
      deviceId: twin.deviceId,
      ...(twin.moduleId !== undefined ? { moduleId: twin.moduleId } : {}),
      etag: etagOf(twin.version),
      deviceEtag: device["etag"],
      status: device["status"],
      statusUpdateTime: device["statusUpdatedTime"],
      connectionState: device["connectionState"],
      lastActivityTime: device["lastActivityTime"],
      cloudToDeviceMessageCount: 0,
      authenticationType: auth["type"],
      x509Thumbprint: auth["x509Thumbprint"],
      version: twin.version,
      tags: twin.tags,
      properties: { desired: twin.properties.desired, reported: twin.properties.reported },
      ...(device["capabilities"] !== undefined ? { capabilities: device["capabilities"] } : {}),
      ...(device["deviceScope"] !== undefined ? { deviceScope: device["deviceScope"] } : {}),
      ...(device["parentScopes"] !== undefined ? { parentScopes: device["parentScopes"] } : {}),
    };
  }
}

function readTwinBody(body: JsonObject): { desired: JsonObject | undefined; tags: JsonObject | undefined } {
  const properties = optionalObject(body, "properties", "twin.properties");
  if (properties && properties["reported"] !== undefined) {
    throw badRequest("twin.properties.reported", "cannot be written by the service; only the device reports it");
  }
  const desired = properties ? optionalObject(properties, "desired", "twin.properties.desired") : undefined;
  const tags = optionalObject(body, "tags", "twin.tags");
  if (desired) checkValues(desired, "twin.properties.desired");
  if (tags) checkValues(tags, "twin.tags");
  return { desired, tags };
}

/** IoT Hub's twin rules: no arrays, and no `.`, `$` or space in keys (`$version`/`$metadata` are ignored). */
function checkValues(obj: JsonObject, field: string): void {
  for (const [key, value] of Object.entries(obj)) {
    if (key.startsWith("$")) continue;
    if (/[.\s$]/.test(key)) throw badRequest(`${field}.${key}`, "is not a valid twin key: keys may not contain '.', '$' or spaces");
    if (Array.isArray(value)) throw badRequest(`${field}.${key}`, "is an array; twin values are objects, strings, numbers, booleans or null");
    if (isObject(value)) checkValues(value, `${field}.${key}`);
  }
}

/** The merge patch that turns `current` into `next`: keys missing from `next` become null (deleted). */
export function replacementPatch(current: Record<string, unknown>, next: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(current)) {
    if (key.startsWith("$")) continue;
    if (!(key in next)) patch[key] = null;
  }
  for (const [key, value] of Object.entries(next)) {
    if (key.startsWith("$")) continue;
    const before = current[key];
    patch[key] = isObject(value) && isObject(before) ? replacementPatch(before, value) : value;
  }
  return patch;
}
