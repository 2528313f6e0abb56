import { join } from "node:path";
import { parseArgs } from "node:util";
import type { StrataConfig } from "../config/schema.js";
import { StrataError } from "../errors.js";
import { IdentityRegistry } from "../identity/registry.js";
import { deviceConnectionString, generateKey } from "../identity/sas.js";
import type { Authentication, IdentityRecord } from "../identity/types.js";
import { normalizeThumbprint } from "../identity/x509.js";
import { ensureEdgeModules } from "../identity/edge-modules.js";
import { silentLogger } from "../log.js";
import { LevelStore } from "../store/level-store.js";
import { dialHost, resolveConfig, type ConfigFlags } from "./context.js";
import type { Output } from "./output.js";
import { serviceApi } from "./service-client.js";

type NewRecord = Parameters<IdentityRegistry["put"]>[0];

/** The identity registry a command edits: the store directly when the gateway is stopped, else its service API. */
interface RegistryAccess {
  list(): Promise<IdentityRecord[]>;
  get(id: string): Promise<IdentityRecord | undefined>;
  put(record: NewRecord): Promise<IdentityRecord>;
  remove(id: string): Promise<void>;
  close(): Promise<void>;
}

export const IDENTITY_USAGE = `strata identity add <deviceId> [--module <moduleId>] [--edge] [--parent <edgeDeviceId>]
                      [--thumbprint <sha> [--thumbprint2 <sha>] | --ca] [--disabled]
strata identity list
strata identity show <deviceId> [--module <moduleId>]
strata identity remove <deviceId> [--module <moduleId>]
  (common: --config <file>  --address <127.0.0.N>)`;

/**
 * `strata identity add|list|show|remove`. Works on a stopped gateway by opening its store; while the root
 * runs (the store is locked) it goes through the root's service API with the owner key, as azure-iothub would.
 */
export async function identityCommand(args: readonly string[], out: Output): Promise<number> {
  const [verb, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: "string" }, address: { type: "string" }, module: { type: "string" },
      edge: { type: "boolean" }, parent: { type: "string" }, thumbprint: { type: "string" },
      thumbprint2: { type: "string" }, ca: { type: "boolean" }, disabled: { type: "boolean" },
    },
  });
  const flags: ConfigFlags = { config: values.config, address: values.address };
  const { config } = await resolveConfig(flags, { prepareEmbedded: false });
  const deviceId = positionals[0];
  const needsId = verb === "add" || verb === "show" || verb === "remove";
  if (!verb || !["add", "list", "show", "remove"].includes(verb) || (needsId && !deviceId)) {
    out.error(IDENTITY_USAGE);
    return 2;
  }
  const id = deviceId && values.module ? `${deviceId}/${values.module}` : deviceId;
  const access = await openRegistry(config);
  try {
    switch (verb) {
      case "list": {
        const records = await access.list();
        if (records.length === 0) out.info("no identities");
        for (const r of records) out.info(`${r.id.padEnd(32)} ${r.status.padEnd(8)} ${r.auth.type.padEnd(20)} ${r.edge ? "edge " : ""}${r.parent ? `parent=${r.parent}` : ""}`);
        return 0;
      }
      case "show": {
        const r = await access.get(id!);
        if (!r) throw new StrataError("STRATA_IDENTITY_UNKNOWN", `no identity ${id}; see 'strata identity list'`);
        printRecord(r, config, out);
        return 0;
      }
      case "remove":
        await access.remove(id!);
        out.info(`removed ${id}`);
        return 0;
      case "add": {
        const auth: Authentication = values.thumbprint
          // `openssl x509 -fingerprint` prints AB:CD:…; the service API (as IoT Hub) takes bare hex only.
          ? { type: "selfSigned", primaryThumbprint: normalizeThumbprint(values.thumbprint), ...(values.thumbprint2 ? { secondaryThumbprint: normalizeThumbprint(values.thumbprint2) } : {}) }
          : values.ca ? { type: "certificateAuthority" } : { type: "sas", primaryKey: generateKey(), secondaryKey: generateKey() };
        const record = await access.put({
          id: id!, deviceId: deviceId!, ...(values.module ? { moduleId: values.module } : {}),
          status: values.disabled ? "disabled" : "enabled", auth, edge: values.edge ?? false,
          ...(values.parent ? { parent: values.parent } : {}),
        });
        printRecord(record, config, out);
        return 0;
      }
    }
    return 2;
  } finally {
    await access.close();
  }
}

function printRecord(r: IdentityRecord, config: StrataConfig, out: Output): void {
  out.info(`${r.id}: ${r.status}, ${r.auth.type}${r.edge ? ", edge" : ""}${r.parent ? `, parent ${r.parent}` : ""}`);
  if (r.auth.type === "sas") {
    out.info(`connection string: ${deviceConnectionString({
      hub: config.hub, deviceId: r.deviceId, ...(r.moduleId ? { moduleId: r.moduleId } : {}),
      key: r.auth.primaryKey, gatewayHostName: dialHost(config),
    })}`);
  }
}

async function openRegistry(config: StrataConfig): Promise<RegistryAccess> {
  const store = new LevelStore({ path: join(config.data_dir, "store"), gatewayId: config.device_id, quotaBytes: config.store.quota_bytes, logger: silentLogger(), sweepIntervalMs: 0 });
  try {
    await store.open();
  } catch (err) {
    if (!isLocked(err)) throw err;
    return serviceRegistry(config);
  }
  const registry = new IdentityRegistry({ self: config.device_id, hubName: config.hub, hostnames: [config.hostname], kv: store.kv("identities"), logger: silentLogger() });
  await registry.load();
  return {
    list: async () => registry.list(),
    get: async (id) => registry.get(id),
    put: async (r) => {
      const record = await registry.put(r);
      // At the root (the registry of record) an edge device gets its runtime's module identities, as IoT Hub does.
      if (!config.parent) await ensureEdgeModules(registry, record);
      return record;
    },
    remove: (id) => registry.remove(id),
    close: () => store.close(),
  };
}

/** The running root's service API (IoT Hub's device JSON), for when the store is held by the gateway. */
function serviceRegistry(config: StrataConfig): RegistryAccess {
  if (config.parent || !config.service) {
    throw new StrataError("STRATA_CLI_GATEWAY_RUNNING", "the gateway is running and holds its store; identities are managed at the root (run this on the root, or stop this gateway first)");
  }
  const api = serviceApi(config);
  return {
    list: async () => ((await api.request("GET", "/devices")) as DeviceJson[]).map(fromDeviceJson),
    get: async (id) => {
      const res = await api.request("GET", devicePath(id), undefined, [404]);
      return res === undefined ? undefined : fromDeviceJson(res as DeviceJson);
    },
    put: async (r) => fromDeviceJson((await api.request("PUT", devicePath(r.id), toDeviceJson(r))) as DeviceJson),
    remove: async (id) => {
      await api.request("DELETE", devicePath(id), undefined, [], { "If-Match": "*" });
    },
    close: async () => undefined,
  };
}

function devicePath(id: string): string {
  const [d, m] = id.split("/");
  return m ? `/devices/${encodeURIComponent(d!)}/modules/${encodeURIComponent(m)}` : `/devices/${encodeURIComponent(d!)}`;
}

interface DeviceJson {
  deviceId: string;
  moduleId?: string;
  status?: string;
  authentication?: {
    type?: string;
    symmetricKey?: { primaryKey?: string; secondaryKey?: string };
    x509Thumbprint?: { primaryThumbprint?: string; secondaryThumbprint?: string };
  };
  capabilities?: { iotEdge?: boolean };
  deviceScope?: string;
  parentScopes?: string[];
}

function toDeviceJson(r: NewRecord): DeviceJson {
  const a = r.auth;
  return {
    deviceId: r.deviceId,
    ...(r.moduleId ? { moduleId: r.moduleId } : {}),
    status: r.status,
    authentication: a.type === "sas"
      ? { type: "sas", symmetricKey: { primaryKey: a.primaryKey, secondaryKey: a.secondaryKey } }
      : a.type === "selfSigned"
        ? { type: "selfSigned", x509Thumbprint: { primaryThumbprint: a.primaryThumbprint, ...(a.secondaryThumbprint ? { secondaryThumbprint: a.secondaryThumbprint } : {}) } }
        : { type: "certificateAuthority" },
    capabilities: { iotEdge: r.edge },
    ...(r.parent ? { deviceScope: r.parent, parentScopes: [r.parent] } : {}),
  };
}

function fromDeviceJson(j: DeviceJson): IdentityRecord {
  const a = j.authentication ?? {};
  const auth: Authentication = a.type === "selfSigned"
    ? { type: "selfSigned", primaryThumbprint: a.x509Thumbprint?.primaryThumbprint ?? "", ...(a.x509Thumbprint?.secondaryThumbprint ? { secondaryThumbprint: a.x509Thumbprint.secondaryThumbprint } : {}) }
    : a.type === "certificateAuthority"
      ? { type: "certificateAuthority" }
      : { type: "sas", primaryKey: a.symmetricKey?.primaryKey ?? "", secondaryKey: a.symmetricKey?.secondaryKey ?? "" };
  const parent = j.parentScopes?.[0] ?? j.deviceScope;
  return {
    id: j.moduleId ? `${j.deviceId}/${j.moduleId}` : j.deviceId,
    deviceId: j.deviceId,
    ...(j.moduleId ? { moduleId: j.moduleId } : {}),
    status: j.status === "disabled" ? "disabled" : "enabled",
    auth,
    edge: j.capabilities?.iotEdge ?? false,
    ...(parent ? { parent: parent.replace(/^ms-azure-iot-edge:\/\//, "").replace(/-\d+$/, "") } : {}),
    generation: 0,
    updatedAt: Date.now(),
  };
}

function isLocked(err: unknown): boolean {
  for (let e: unknown = err; e && typeof e === "object"; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: unknown }).code === "LEVEL_LOCKED") return true;
  }
  return false;
}
