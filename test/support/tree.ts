// Real gateway trees for hierarchy tests: one `strata start` process per gateway, each on its own loopback
// address 127.A.B.N with the standard ports (8883/5671/443, as the SDKs and a plant network have them).
//
// Set-up is done directly, not with `strata child add/install` (built in parallel): one hierarchy root CA,
// an edge CA and a server certificate (SAN = the gateway's IP) per gateway, and every gateway's store seeded
// before its first start with the identities of its own subtree (itself included), keys shared, as the root
// would hand them down. Scope sync then finds the same records at the parent.
import "reflect-metadata";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { stringify as toToml } from "smol-toml";
import { generateKey, deviceConnectionString } from "../../core/identity/sas.js";
import { IdentityRegistry } from "../../core/identity/registry.js";
import type { IdentityRecord } from "../../core/identity/types.js";
import { silentLogger } from "../../core/log.js";
import { createRootCa, issueCaCert, issueServerCert, type CaMaterial } from "../../core/pki/certs.js";
import { LevelStore } from "../../core/store/level-store.js";

export const CLI = join(__dirname, "..", "..", "core", "cli", "main.js");
export const AMQP_PLUGIN = join(__dirname, "..", "..", "plugins", "amqp", "index.js");

export interface TreeSpec {
  /** First three octets of the gateways' addresses, e.g. "127.77.1": the n-th gateway gets 127.77.1.(n+1). */
  subnet: string;
  /** Gateways, root first (no parent). */
  gateways: {
    id: string; parent?: string; transport?: "amqps" | "wss" | "auto"; plugins?: Record<string, Record<string, unknown>>;
    /** The AMQP port this child dials on its parent's address (default 5671): a link proxy's port (test/support/link-proxy.ts). */
    parentAmqpPort?: number;
    /** Top-level config keys set over the generated ones, e.g. `{ max_clients: 1100 }`. */
    config?: Record<string, unknown>;
  }[];
  /** Leaf devices (SAS) and the gateway each connects to. */
  leaves?: { id: string; gateway: string }[];
  hub?: string;
  /** Gateways' log level (their stdout is kept for the test to read). Default "info". */
  logLevel?: string;
  /** Extra `[plugins.*]` sections for every gateway. */
  plugins?: Record<string, Record<string, unknown>>;
}

export interface LogLine {
  msg?: string;
  level?: number;
  [key: string]: unknown;
}

export class TreeGateway {
  proc: ChildProcess | undefined;
  readonly lines: string[] = [];
  private readonly lineWaiters = new Set<(line: string) => void>();
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(
    readonly id: string,
    readonly address: string,
    readonly dir: string,
    readonly configFile: string,
    readonly parent: string | undefined,
  ) {}

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Spawns `strata start` and resolves once it printed that it runs (listeners bound; upstream may still connect). */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.running) throw new Error(`${this.id} is already running`);
    const proc = spawn(process.execPath, [...gatewayNodeArgs(), CLI, "start", "--config", this.configFile], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, STRATA_LOG_LEVEL: undefined },
    });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => {
        this.lines.push(line);
        if (this.lines.length > 20_000) this.lines.splice(0, 10_000);
        for (const w of [...this.lineWaiters]) w(line);
      });
    }
    await this.waitForLine((l) => l.includes(`gateway ${this.id} is running`), timeoutMs, "start");
  }

  /** Resolves with the first line (already seen or coming) that matches; rejects when the process exits. */
  waitForLine(pred: (line: string) => boolean, timeoutMs = 30_000, what = "a log line", fromIndex = 0): Promise<string> {
    const seen = this.lines.slice(fromIndex).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const done = (err?: Error, line?: string) => {
        clearTimeout(timer);
        this.lineWaiters.delete(onLine);
        this.proc?.removeListener("exit", onExit);
        if (err) reject(err);
        else resolve(line!);
      };
      const onLine = (line: string) => {
        if (pred(line)) done(undefined, line);
      };
      const onExit = (code: number | null, signal: string | null) =>
        done(new Error(`${this.id} exited (${code ?? signal}) while waiting for ${what}; last output:\n${this.lines.slice(-30).join("\n")}`));
      const timer = setTimeout(() => done(new Error(`${this.id}: no ${what} within ${timeoutMs} ms; last output:\n${this.lines.slice(-30).join("\n")}`)), timeoutMs);
      this.lineWaiters.add(onLine);
      this.proc?.once("exit", onExit);
    });
  }

  /** The first JSON log entry (from `fromIndex` on) whose `msg` matches. */
  async waitForLog(msg: string, timeoutMs = 30_000, fromIndex = 0): Promise<LogLine> {
    const line = await this.waitForLine((l) => l.includes(`"msg":"${msg}"`), timeoutMs, `log "${msg}"`, fromIndex);
    return JSON.parse(line) as LogLine;
  }

  /** Waits for this child's upstream link to come up (after `fromIndex` in its output). */
  waitUpstream(timeoutMs = 30_000, fromIndex = 0): Promise<LogLine> {
    return this.waitForLog("upstream link connected", timeoutMs, fromIndex);
  }

  /** kill -9: no goodbye to anyone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.proc!.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM and wait for a clean exit. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.proc!.kill("SIGTERM");
    const timer = setTimeout(() => this.proc?.kill("SIGKILL"), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface Tree {
  dir: string;
  hub: string;
  caFile: string;
  caPem: string;
  gateways: Map<string, TreeGateway>;
  root: TreeGateway;
  keys: Map<string, string>;
  gw(id: string): TreeGateway;
  /** A leaf's device connection string pointing at its gateway (MQTT on 8883 / AMQP on 5671). */
  leafConnectionString(leaf: string): string;
  /** Starts every gateway, root first, and waits until each child's upstream link is connected. */
  startAll(): Promise<void>;
  stopAll(): Promise<void>;
  /** The root's telemetry log (`strata telemetry tail --json`), one parsed record per line. */
  telemetry(): Promise<TelemetryLine[]>;
  /** Streams the root's telemetry log until `until` says stop; resolves with every record seen. */
  followTelemetry(until: (records: TelemetryLine[]) => boolean, timeoutMs: number): Promise<TelemetryLine[]>;
  cleanup(): Promise<void>;
}

export interface TelemetryLine {
  deviceId: string;
  moduleId: string | null;
  messageId: string | null;
  properties: Record<string, string>;
  systemProperties: Record<string, string>;
  body: string;
}

/** Builds the files for a tree (certificates, configs, seeded stores); start it with `startAll()`. */
export async function buildTree(spec: TreeSpec): Promise<Tree> {
  const dir = mkdtempSync(join(tmpdir(), "strata-tree-"));
  const hub = spec.hub ?? "strata-tree";
  const rootCa = await createRootCa({ commonName: "Strata hierarchy test root CA" });
  const caFile = join(dir, "root-ca.pem");
  writeFileSync(caFile, rootCa.cert);
  const byId = new Map(spec.gateways.map((g, i) => [g.id, { ...g, address: `${spec.subnet}.${i + 1}` }]));
  const leaves = spec.leaves ?? [];
  const keys = new Map<string, string>();
  for (const id of [...byId.keys(), ...leaves.map((l) => l.id)]) keys.set(id, generateKey());

  const records: Omit<IdentityRecord, "generation" | "updatedAt">[] = [
    ...spec.gateways.map((g) => ({
      id: g.id, deviceId: g.id, status: "enabled" as const, edge: true,
      auth: { type: "sas" as const, primaryKey: keys.get(g.id)!, secondaryKey: generateKey() },
      ...(g.parent ? { parent: g.parent } : {}),
    })),
    ...leaves.map((l) => ({
      id: l.id, deviceId: l.id, status: "enabled" as const, edge: false, parent: l.gateway,
      auth: { type: "sas" as const, primaryKey: keys.get(l.id)!, secondaryKey: generateKey() },
    })),
  ];
  const parentOf = (id: string) => records.find((r) => r.id === id)?.parent;
  const isBelow = (id: string, gw: string): boolean => {
    for (let at: string | undefined = id; at !== undefined; at = parentOf(at)) if (at === gw) return true;
    return false;
  };

  const gateways = new Map<string, TreeGateway>();
  for (const g of byId.values()) {
    const gdir = join(dir, g.id);
    mkdirSync(gdir, { recursive: true });
    const edgeCa: CaMaterial = await issueCaCert(rootCa, { commonName: `Strata edge CA ${g.id}` });
    const server = await issueServerCert(edgeCa, { ips: [g.address] });
    writeFileSync(join(gdir, "server.chain.pem"), server.chain);
    writeFileSync(join(gdir, "server.key.pem"), server.key, { mode: 0o600 });
    writeFileSync(join(gdir, "identity.key"), keys.get(g.id)!, { mode: 0o600 });
    const parent = g.parent ? byId.get(g.parent) : undefined;
    const config: Record<string, unknown> = {
      hub,
      device_id: g.id,
      hostname: g.address,
      data_dir: join(gdir, "data"),
      tls: { cert_file: join(gdir, "server.chain.pem"), key_file: join(gdir, "server.key.pem"), ca_file: caFile },
      listen: { address: g.address, mqtt: 8883, amqp: 5671, https: 443 },
      log: { level: spec.logLevel ?? "info" },
      plugins: { amqp: {}, ...(spec.plugins ?? {}), ...(g.plugins ?? {}) },
      ...(g.config ?? {}),
    };
    if (parent) {
      config.identity = { key_file: join(gdir, "identity.key") };
      config.parent = { hostname: parent.address, amqp_port: g.parentAmqpPort ?? 5671, https_port: 443, transport: g.transport ?? "amqps" };
    } else {
      writeFileSync(join(gdir, "owner.key"), generateKey(), { mode: 0o600 });
      config.service = { owner_key_file: join(gdir, "owner.key") };
    }
    const configFile = join(gdir, "strata.toml");
    writeFileSync(configFile, toToml(config));
    // Seed this gateway's identities: itself and everything below it (the root: everything).
    const store = new LevelStore({ path: join(gdir, "data", "store"), gatewayId: g.id, quotaBytes: 1024 ** 3, logger: silentLogger(), sweepIntervalMs: 0 });
    await store.open();
    const registry = new IdentityRegistry({ self: g.id, hubName: hub, hostnames: [g.address], kv: store.kv("identities"), logger: silentLogger() });
    await registry.load();
    for (const r of records) if (isBelow(r.id, g.id)) await registry.put(r);
    await store.close();
    gateways.set(g.id, new TreeGateway(g.id, g.address, gdir, configFile, g.parent));
  }

  const root = gateways.get(spec.gateways[0]!.id)!;
  const tree: Tree = {
    dir, hub, caFile, caPem: rootCa.cert, gateways, root, keys,
    gw(id) {
      const g = gateways.get(id);
      if (!g) throw new Error(`no gateway ${id}`);
      return g;
    },
    leafConnectionString(leaf) {
      const l = leaves.find((x) => x.id === leaf);
      if (!l) throw new Error(`no leaf ${leaf}`);
      return deviceConnectionString({ hub, deviceId: leaf, key: keys.get(leaf)!, gatewayHostName: byId.get(l.gateway)!.address });
    },
    async startAll() {
      for (const g of spec.gateways) {
        const gw = gateways.get(g.id)!;
        await gw.start();
        if (g.parent) await gw.waitUpstream();
      }
    },
    async stopAll() {
      for (const g of [...spec.gateways].reverse()) await gateways.get(g.id)!.stop();
    },
    async telemetry() {
      const out = await runCli(["telemetry", "tail", "--json", "--config", root.configFile]);
      return out.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as TelemetryLine);
    },
    followTelemetry(until, timeoutMs) {
      return new Promise((resolve, reject) => {
        const proc = spawn(process.execPath, [CLI, "telemetry", "tail", "--json", "--follow", "--config", root.configFile], { stdio: ["ignore", "pipe", "pipe"] });
        const records: TelemetryLine[] = [];
        let stderr = "";
        proc.stderr!.on("data", (d) => (stderr += String(d)));
        const timer = setTimeout(() => {
          proc.kill("SIGKILL");
          reject(new Error(`telemetry: only ${records.length} records after ${timeoutMs} ms ${stderr}`));
        }, timeoutMs);
        let finished = false;
        createInterface({ input: proc.stdout! }).on("line", (line) => {
          if (finished || !line.trim()) return;
          records.push(JSON.parse(line) as TelemetryLine);
          if (until(records)) {
            finished = true;
            clearTimeout(timer);
            proc.kill("SIGTERM");
            resolve(records);
          }
        });
        proc.once("exit", (code) => {
          if (!finished) {
            clearTimeout(timer);
            reject(new Error(`telemetry tail exited (${code}) after ${records.length} records: ${stderr}`));
          }
        });
      });
    },
    async cleanup() {
      // Profiling (NODE_OPTIONS=--cpu-prof, STRATA_GATEWAY_NODE_ARGS) needs a clean exit for the profile to be written.
      const graceful = (process.env.NODE_OPTIONS ?? "").includes("--cpu-prof") || gatewayNodeArgs().length > 0;
      for (const g of [...gateways.values()].reverse()) await (graceful ? g.stop() : g.kill());
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return tree;
}

/**
 * Extra node flags for the gateways tests and benches spawn, from STRATA_GATEWAY_NODE_ARGS (space-separated),
 * for flags NODE_OPTIONS refuses or that must not reach the load generator, e.g.
 * `STRATA_GATEWAY_NODE_ARGS="--heap-prof --heap-prof-dir=/tmp/hp" node dist/test/bench/run.js chain`.
 */
export function gatewayNodeArgs(): string[] {
  return (process.env.STRATA_GATEWAY_NODE_ARGS ?? "").split(" ").filter(Boolean);
}

/** Runs the strata CLI to completion; resolves with stdout, rejects with stderr on a non-zero exit. */
export function runCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    proc.stdout!.on("data", (d) => (out += String(d)));
    proc.stderr!.on("data", (d) => (err += String(d)));
    proc.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`strata ${args.join(" ")} exited ${code}: ${err}`))));
  });
}

/** Why hierarchy tests cannot run here, or undefined when they can (root for port 443, built AMQP head). */
export function treeUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "hierarchy tests bind 443 on 127.x addresses: run as root (CI does)";
  try {
    readFileSync(AMQP_PLUGIN);
  } catch {
    return `the AMQP head is not built (${AMQP_PLUGIN})`;
  }
  return undefined;
}
