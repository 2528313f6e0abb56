import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateConfig, type StrataConfigInput } from "../../core/config/index.js";
import { Gateway } from "../../core/gateway.js";
import { deviceConnectionString, generateKey, serviceConnectionString } from "../../core/identity/index.js";
import type { IdentityRecord } from "../../core/identity/types.js";
import { createLogger, silentLogger, type Logger } from "../../core/log.js";
import { ensureDevPki, type DevPki } from "../../core/pki/index.js";
import type { PluginEntry } from "../../core/plugin/host.js";

export interface TestGatewayOptions {
  /** Built-in plugins to run (by folder name under plugins/). Default none. */
  plugins?: readonly string[];
  /** In-process plugin entries (a test plugin, a plugin under test with settings). */
  extraPlugins?: readonly PluginEntry[];
  /** Loopback address for this gateway (127.0.0.N); SDK-fixed ports need one per gateway. Default 127.0.0.1. */
  address?: string;
  /** Ports; 0 (any free port) unless given. Tests that use the SDKs' fixed 443 pass `https: 443`. */
  ports?: { mqtt?: number; amqp?: number; https?: number };
  hub?: string;
  deviceId?: string;
  /** Extra config keys merged over the generated ones (routes, store, plugins, …). */
  config?: Partial<StrataConfigInput>;
  /** Reuse a data dir (restart tests). */
  dir?: string;
  /**
   * Run as a child of `gateway`: `[parent]` points at its HTTPS (and AMQP, when it has one) port, `[identity]
   * key_file` holds `key` (register the child at the parent first, e.g. with addDevice(id, { edge: true })), and
   * there is no `[service]`. Use the same address as the parent: gateways on one address share a dev PKI.
   */
  parent?: { gateway: TestGateway; key: string };
  logger?: Logger;
}

export interface TestGateway {
  gw: Gateway;
  dir: string;
  address: string;
  hubName: string;
  caFile: string;
  caPem: string;
  ownerKey: string;
  ownerConnectionString: string;
  /** Port a listener bound ("https", "mqtt", "amqp"). */
  port(name: string): number;
  /** Registers a SAS device (or module) in this gateway's identities; returns its key and connection string. */
  addDevice(id: string, opts?: { moduleId?: string; edge?: boolean; parent?: string }): Promise<{ key: string; connectionString: string; record: IdentityRecord }>;
  /** Stops the gateway; the data dir stays (for restart tests) unless `remove`. */
  stop(opts?: { remove?: boolean }): Promise<void>;
  /** Starts the same gateway again on the same dir and ports. */
  restart(): Promise<TestGateway>;
}

const pkiByAddress = new Map<string, Promise<DevPki>>();
const sharedRoot = mkdtempSync(join(tmpdir(), "strata-test-pki-"));

/** One dev PKI per address per test process: key generation is the slow part of starting a gateway. */
function pkiFor(address: string): Promise<DevPki> {
  let p = pkiByAddress.get(address);
  if (!p) {
    p = ensureDevPki(join(sharedRoot, address), { hostnames: ["localhost"], ips: [address] });
    pkiByAddress.set(address, p);
  }
  return p;
}

/** `[parent]` and `[identity]` of a test child gateway. */
function childKeys(parent: { gateway: TestGateway; key: string }, dir: string): Partial<StrataConfigInput> {
  const keyFile = join(dir, "identity.key");
  writeFileSync(keyFile, parent.key, { mode: 0o600 });
  const p = parent.gateway;
  const amqp = p.gw.listeners.get("amqp");
  return {
    identity: { key_file: keyFile },
    parent: { hostname: p.gw.config.hostname, address: p.address, https_port: p.port("https"), ...(amqp ? { amqp_port: amqp.port } : {}) },
  };
}

function testLogger(): Logger {
  const level = process.env.STRATA_TEST_LOG;
  return level ? createLogger({ level: level as "debug" }) : silentLogger();
}

/**
 * A real gateway in this process for integration tests: temp data dir, dev PKI, owner key, ports 0 by default.
 * Stop it in `t.after()`.
 */
export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const address = opts.address ?? "127.0.0.1";
  const hubName = opts.hub ?? "testhub";
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "strata-gw-"));
  const pki = await pkiFor(address);
  const ownerKeyFile = join(dir, "iothubowner.key");
  let ownerKey: string;
  try {
    ownerKey = (await import("node:fs")).readFileSync(ownerKeyFile, "utf8").trim();
  } catch {
    ownerKey = generateKey();
    writeFileSync(ownerKeyFile, ownerKey, { mode: 0o600 });
  }
  const config = validateConfig(
    {
      hub: hubName,
      device_id: opts.deviceId ?? "gw-root",
      hostname: address === "127.0.0.1" ? "localhost" : address,
      data_dir: join(dir, "data"),
      tls: {
        cert_file: pki.paths.serverChain, key_file: pki.paths.serverKey, ca_file: pki.paths.trustBundle,
        edge_ca_cert_file: pki.paths.edgeCaCert, edge_ca_key_file: pki.paths.edgeCaKey,
      },
      listen: { address, mqtt: opts.ports?.mqtt ?? 0, amqp: opts.ports?.amqp ?? 0, https: opts.ports?.https ?? 0 },
      ...(opts.parent ? childKeys(opts.parent, dir) : { service: { owner_key_file: ownerKeyFile } }),
      ...opts.config,
    },
    { source: "test config", baseDir: dir },
  );
  const gw = await Gateway.start({
    config,
    logger: opts.logger ?? testLogger(),
    defaultPlugins: opts.plugins ?? [],
    extraPlugins: opts.extraPlugins,
  });
  const port = (name: string): number => {
    const l = gw.listeners.get(name);
    if (!l) throw new Error(`no listener named ${name} (have: ${gw.listeners.all().map((x) => x.name).join(", ")})`);
    return l.port;
  };
  const self: TestGateway = {
    gw,
    dir,
    address,
    hubName,
    caFile: pki.paths.trustBundle,
    caPem: pki.trustBundle,
    ownerKey,
    ownerConnectionString: serviceConnectionString({ hub: address, policy: "iothubowner", key: ownerKey }),
    port,
    async addDevice(id, o = {}) {
      const key = generateKey();
      const record = await gw.identities.put({
        id: o.moduleId ? `${id}/${o.moduleId}` : id,
        deviceId: id,
        ...(o.moduleId ? { moduleId: o.moduleId } : {}),
        status: "enabled",
        auth: { type: "sas", primaryKey: key, secondaryKey: generateKey() },
        edge: o.edge ?? false,
        ...(o.parent ? { parent: o.parent } : {}),
      });
      const mqtt = gw.listeners.get("mqtt");
      const connectionString = deviceConnectionString({
        hub: hubName,
        deviceId: id,
        ...(o.moduleId ? { moduleId: o.moduleId } : {}),
        key,
        gatewayHostName: mqtt ? `${address === "127.0.0.1" ? "localhost" : address}:${mqtt.port}` : address,
      });
      return { key, connectionString, record };
    },
    async stop(o = {}) {
      await gw.stop();
      if (o.remove) rmSync(dir, { recursive: true, force: true });
    },
    restart() {
      const ports = Object.fromEntries(gw.listeners.all().map((l) => [l.name, l.port]));
      return startTestGateway({ ...opts, dir, ports: { ...opts.ports, ...ports } });
    },
  };
  return self;
}
