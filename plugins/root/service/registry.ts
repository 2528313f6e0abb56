import { EDGE_SYSTEM_MODULES, identityId, type Hub, type Identities, type IdentityRecord, type Kv } from "../../../core/index.js";
import {
  deviceJson, newGenerationId, parseDeviceSpec, scopeCandidates, scopeOf, withKeys, type RegistryMeta,
} from "./devices.js";
import { badRequest, moduleNotFound, notFound, ServiceError } from "./errors.js";
import { etagOf, hasIfMatch, ifMatch } from "./etag.js";
import type { JsonObject } from "./json.js";

/** IoT Hub's rule for device and module ids: up to 128 of these characters. */
const ID_PATTERN = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/;

function checkId(id: string, field: string): void {
  if (!ID_PATTERN.test(id)) {
    throw badRequest(field, `"${id}" is not a valid id: use up to 128 letters, digits or -.%_*?!(),:=@$'`);
  }
}

/**
 * The identity registry as IoT Hub's service API shows it: device and module JSON over core's Identities,
 * with IoT Hub's create/update/delete and If-Match rules.
 */
export class DeviceRegistry {
  constructor(
    private readonly identities: Identities,
    private readonly hub: Hub,
    private readonly meta: Kv<RegistryMeta>,
  ) {}

  async view(record: IdentityRecord): Promise<JsonObject> {
    const parentId = record.moduleId === undefined ? record.parent : undefined;
    return deviceJson({
      record,
      meta: await this.meta.get(record.id),
      connected: this.hub.isConnected(record.id),
      parentScope: parentId ? scopeOf(parentId, await this.meta.get(parentId)) : undefined,
    });
  }

  /** A registered device or module, or 404 in IoT Hub's terms. */
  require(deviceId: string, moduleId?: string): IdentityRecord {
    const record = this.identities.get(identityId(deviceId, moduleId));
    if (!record) throw moduleId === undefined ? notFound(deviceId) : moduleNotFound(identityId(deviceId, moduleId));
    return record;
  }

  async list(): Promise<JsonObject[]> {
    const devices = this.identities.list().filter((r) => r.moduleId === undefined);
    return Promise.all(devices.map((r) => this.view(r)));
  }

  async listModules(deviceId: string): Promise<JsonObject[]> {
    this.require(deviceId);
    const modules = this.identities.list().filter((r) => r.deviceId === deviceId && r.moduleId !== undefined);
    return Promise.all(modules.map((r) => this.view(r)));
  }

  async get(deviceId: string, moduleId?: string): Promise<JsonObject> {
    return this.view(this.require(deviceId, moduleId));
  }

  /** PUT: no If-Match creates (409 if it exists); `*` creates or replaces; an etag replaces if it matches. */
  async put(deviceId: string, moduleId: string | undefined, body: JsonObject, ifMatchHeader: string | string[] | undefined): Promise<JsonObject> {
    const field = moduleId === undefined ? "device" : "module";
    checkId(deviceId, "deviceId");
    if (moduleId !== undefined) checkId(moduleId, "moduleId");
    if (body["deviceId"] !== undefined && body["deviceId"] !== deviceId) {
      throw badRequest(`${field}.deviceId`, `"${String(body["deviceId"])}" does not match the id in the path "${deviceId}"`);
    }
    if (moduleId !== undefined && body["moduleId"] !== undefined && body["moduleId"] !== moduleId) {
      throw badRequest("module.moduleId", `"${String(body["moduleId"])}" does not match the id in the path "${moduleId}"`);
    }
    if (moduleId !== undefined) this.require(deviceId);
    const id = identityId(deviceId, moduleId);
    const existing = this.identities.get(id);
    const etag = ifMatch(ifMatchHeader);
    if (!hasIfMatch(ifMatchHeader) && existing) {
      throw new ServiceError(409, moduleId === undefined ? "DeviceAlreadyExists" : "ModuleAlreadyExistsOnDevice",
        `${id} already exists; to replace it send If-Match: "*" (or its etag)`);
    }
    if (etag !== undefined) {
      if (!existing) throw moduleId === undefined ? notFound(deviceId) : moduleNotFound(id);
      if (etag !== etagOf(existing.generation)) throw preconditionFailed(id, etag, existing.generation);
    }
    const spec = parseDeviceSpec(body, field);
    const parent = moduleId !== undefined ? deviceId : this.resolveParent(deviceId, spec.parentScope, spec.edge);
    const record = await this.identities.put({
      id,
      deviceId,
      ...(moduleId !== undefined ? { moduleId } : {}),
      status: spec.status,
      auth: withKeys(spec.auth, existing?.auth),
      edge: moduleId === undefined && spec.edge,
      ...(parent !== undefined ? { parent } : {}),
    });
    const previousMeta = existing ? await this.meta.get(id) : undefined;
    const now = new Date().toISOString();
    const meta: RegistryMeta = {
      generationId: previousMeta?.generationId ?? newGenerationId(),
      statusUpdatedTime: previousMeta && existing?.status === spec.status ? previousMeta.statusUpdatedTime : now,
    };
    const managedBy = spec.managedBy ?? previousMeta?.managedBy;
    if (managedBy !== undefined) meta.managedBy = managedBy;
    await this.meta.put(id, meta);
    // IoT Hub creates an edge device's $edgeAgent and $edgeHub with it (also when an update makes it one).
    if (record.edge && moduleId === undefined) {
      for (const m of EDGE_SYSTEM_MODULES) {
        if (!this.identities.get(identityId(deviceId, m))) await this.put(deviceId, m, { managedBy: "IotEdge" }, undefined);
      }
    }
    return this.view(record);
  }

  /** DELETE: absent or `*` If-Match deletes unconditionally; an etag must match. A device takes its modules along. */
  async remove(deviceId: string, moduleId: string | undefined, ifMatchHeader: string | string[] | undefined): Promise<void> {
    const record = this.require(deviceId, moduleId);
    const etag = ifMatch(ifMatchHeader);
    if (etag !== undefined && etag !== etagOf(record.generation)) throw preconditionFailed(record.id, etag, record.generation);
    if (record.id === this.identities.self) {
      throw badRequest("deviceId", `"${record.id}" is this root gateway's own identity and cannot be deleted`);
    }
    if (moduleId === undefined) {
      for (const m of this.identities.list().filter((r) => r.deviceId === deviceId && r.moduleId !== undefined)) {
        await this.identities.remove(m.id);
        await this.meta.del(m.id);
      }
    }
    await this.identities.remove(record.id);
    await this.meta.del(record.id);
  }

  /** The edge device a scope names; the root itself means "directly under the root" (no parent). */
  private resolveParent(deviceId: string, scope: string | undefined, edge: boolean): string | undefined {
    if (scope === undefined) return undefined;
    const field = edge ? "device.parentScopes" : "device.deviceScope";
    for (const candidate of scopeCandidates(scope)) {
      if (candidate === deviceId) throw badRequest(field, `names the device itself ("${scope}"); name its parent edge device`);
      if (candidate === this.identities.self) return undefined;
      const parent = this.identities.get(candidate);
      if (parent && parent.moduleId === undefined) {
        if (!parent.edge) throw badRequest(field, `names ${candidate}, which is not an edge device (capabilities.iotEdge is false)`);
        return candidate;
      }
    }
    throw badRequest(field, `"${scope}" names no registered edge device; create the parent first`);
  }
}

export function preconditionFailed(id: string, sent: string, generation: number): ServiceError {
  return new ServiceError(412, "PreconditionFailed",
    `If-Match "${sent}" does not match the current etag "${etagOf(generation)}" of ${id}; GET it again and retry`);
}
