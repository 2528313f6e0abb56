// The translation conformance kit: on top of the plugin kit, what every translation plugin must do. A
// plugin's test file runs `translationConformanceSuite(plugin, { converters, driver })`; third parties run
// the same kit in their CI (the aedes-persistence idea).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateConfig } from "../config/load.js";
import { PluginError } from "../errors.js";
import { Gateway } from "../gateway.js";
import { generateKey } from "../identity/sas.js";
import { createLogger } from "../log.js";
import type { Message } from "../message.js";
import { ensureDevPki, type DevPki } from "../pki/dev-pki.js";
import type { PluginModule } from "../plugin/api.js";
import { pluginConformanceSuite, type ConformanceOptions } from "../plugin/conformance.js";
import { withDeadline } from "../plugin/deadline.js";
import { checkConverterSamples, DEVICE_ID_PROPERTY } from "./convert.js";
import { TelemetryRecorder } from "./recorder.js";
import { translationStats } from "./stats.js";
import type { Converter, TranslationStats } from "./types.js";

/** A real gateway (root, dev PKI, temp data dir) running the plugin under test, as the kit's drivers see it. */
export interface KitGateway {
  readonly gw: Gateway;
  readonly address: string;
  readonly hubName: string;
  /** PEM trust bundle for the gateway's TLS listeners. */
  readonly caPem: string;
  /** Records everything that reaches the root's northbound side. */
  readonly recorder: TelemetryRecorder;
  /** Log lines (JSON) at warn and above. */
  readonly logLines: string[];
  /** Port of a bound listener (as the plugin reported it to TOKENS.Listeners, or "https"). */
  port(name: string): number;
  /** The plugin's translation counters. */
  stats(): TranslationStats | undefined;
}

/** How the kit plays devices against the running plugin (real sockets, as a device would). */
export interface TranslationDriver {
  /** Sends one valid input as `deviceId`; resolves once the plugin acknowledged it (durable). */
  sendValid(k: KitGateway, deviceId: string): Promise<void>;
  /** Sends one malformed input; resolves once the plugin refused or dropped it. Must not reject because of the refusal. */
  sendMalformed(k: KitGateway): Promise<void>;
  /** Opens a device connection and keeps it open; `closed` resolves when the gateway closes it. Connectionless transports omit it. */
  openConnection?(k: KitGateway): Promise<{ closed: Promise<void> }>;
}

export interface TranslationConformanceOptions {
  /** The plugin's converters: their declared samples must round-trip. */
  readonly converters: readonly Converter<any, any>[];
  /** Drives the plugin for the runtime checks; without it only the converter and plugin-kit checks run. */
  readonly driver?: TranslationDriver;
  /** `[plugins.NAME]` for the runtime checks (listen on port 0). */
  readonly settings?: Record<string, unknown>;
  /** Options of the plugin kit run first (core/plugin/conformance.ts); false skips it. */
  readonly pluginKit?: ConformanceOptions | false;
  /** Loopback address of the kit's gateway (default 127.0.0.1) and its HTTPS port (default 0). */
  readonly address?: string;
  readonly httpsPort?: number;
  /** Called after each gateway start, before driving (register devices for a pre-registered setup). */
  readonly prepare?: (k: KitGateway) => Promise<void>;
  /** Bound on each check's waits (default 15 s). */
  readonly timeoutMs?: number;
}

export const TRANSLATION_CONFORMANCE_CHECKS: readonly string[] = [
  "converters round-trip their declared samples",
  "malformed input is refused, counted and logged; other devices' data still arrives",
  "identities are stable across restarts",
  "stop closes every socket",
];

/** Registers the plugin kit's tests and one node:test test per translation check. */
export function translationConformanceSuite(mod: PluginModule, options: TranslationConformanceOptions): void {
  const { describe, test } = require("node:test") as typeof import("node:test");
  if (options.pluginKit !== false) pluginConformanceSuite(mod, options.pluginKit ?? {});
  const name = mod.manifest.name;
  describe(`translation conformance: ${name}`, () => {
    test(TRANSLATION_CONFORMANCE_CHECKS[0]!, () => checkSamples(mod, options.converters));
    const driver = options.driver;
    if (!driver) return;
    test(TRANSLATION_CONFORMANCE_CHECKS[1]!, () => checkMalformed(mod, options, driver));
    test(TRANSLATION_CONFORMANCE_CHECKS[2]!, () => checkStableIdentities(mod, options, driver));
    test(TRANSLATION_CONFORMANCE_CHECKS[3]!, () => checkStopCloses(mod, options, driver));
  });
}

function fail(mod: PluginModule, message: string, cause?: unknown): PluginError {
  return new PluginError(mod.manifest.name, "STRATA_TRANSLATION_CONFORMANCE", message, cause === undefined ? undefined : { cause });
}

/** Throws naming every sample that does not round-trip. */
export async function checkSamples(mod: PluginModule, converters: readonly Converter<any, any>[]): Promise<void> {
  if (converters.length === 0) throw fail(mod, "no converters given to the kit; pass the plugin's converters");
  const problems = converters.flatMap((c) => checkConverterSamples(c));
  if (problems.length > 0) throw fail(mod, `converter samples do not round-trip: ${problems.join("; ")}`);
}

/** Whether `m` came from `deviceId` (identity mode: its source; protocol mode: its deviceId property). */
export function fromDevice(m: Message, deviceId: string): boolean {
  return m.source === deviceId || m.properties[DEVICE_ID_PROPERTY] === deviceId;
}

async function checkMalformed(mod: PluginModule, o: TranslationConformanceOptions, d: TranslationDriver): Promise<void> {
  await withKitGateway(mod, o, undefined, async (k) => {
    await bounded(mod, o, "sendMalformed", () => d.sendMalformed(k));
    await bounded(mod, o, "sendValid after a malformed input", () => d.sendValid(k, "kit-device-b"));
    await bounded(mod, o, "kit-device-b's message reaching the root", () => k.recorder.waitFor((m) => fromDevice(m, "kit-device-b")));
    const stats = k.stats();
    if (!stats) throw fail(mod, "the plugin runs no Translator on the gateway's hub (translationStats is empty); build it on core's Translator");
    if (stats.malformed + stats.refused < 1) throw fail(mod, `malformed input was not counted (stats: ${JSON.stringify(stats)})`);
    if (!k.logLines.some((l) => l.includes("STRATA_TRANSLATION_MALFORMED") || l.includes("malformed"))) {
      throw fail(mod, "malformed input was not logged at warn");
    }
    if (!k.gw.report.started.includes(mod.manifest.name)) throw fail(mod, "the plugin is no longer running after malformed input");
  });
}

async function checkStableIdentities(mod: PluginModule, o: TranslationConformanceOptions, d: TranslationDriver): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "strata-translation-kit-"));
  try {
    const seen: string[] = [];
    for (let round = 1; round <= 2; round++) {
      await withKitGateway(mod, o, dir, async (k) => {
        await bounded(mod, o, `sendValid (run ${round})`, () => d.sendValid(k, "kit-device-a"));
        const m = await bounded(mod, o, `kit-device-a's message (run ${round})`, () => k.recorder.waitFor((x) => fromDevice(x, "kit-device-a")));
        const record = k.gw.identities.get(m.source);
        seen.push(JSON.stringify({
          source: m.source,
          deviceId: m.properties[DEVICE_ID_PROPERTY],
          key: record?.auth.type === "sas" ? record.auth.primaryKey : record?.auth.type,
        }));
        if (round === 2 && (k.stats()?.created ?? 0) > 0) throw fail(mod, "a known device got a new identity after a restart");
      });
    }
    if (seen[0] !== seen[1]) throw fail(mod, `the device's identity changed across a restart: ${seen[0]} then ${seen[1]}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function checkStopCloses(mod: PluginModule, o: TranslationConformanceOptions, d: TranslationDriver): Promise<void> {
  const before = resourceCounts();
  let connection: { closed: Promise<void> } | undefined;
  await withKitGateway(mod, o, undefined, async (k) => {
    await bounded(mod, o, "sendValid", () => d.sendValid(k, "kit-device-c"));
    if (d.openConnection) connection = await bounded(mod, o, "openConnection", () => d.openConnection!(k));
  });
  if (connection) await bounded(mod, o, "the open device connection to be closed by stop", () => connection!.closed);
  const leaked = await settledLeaks(before);
  if (leaked.length > 0) throw fail(mod, `after stop the process holds new active resources: ${leaked.join(", ")}; close every server and socket in stop()`);
}

function bounded<T>(mod: PluginModule, o: TranslationConformanceOptions, what: string, work: () => Promise<T>): Promise<T> {
  const ms = o.timeoutMs ?? 15_000;
  return withDeadline(Promise.resolve().then(work), ms, () => fail(mod, `${what} did not finish within ${ms} ms`));
}

const pkis = new Map<string, Promise<DevPki>>();

/** Starts a root gateway running only the plugin under test, runs `body`, stops it (and removes a temp dir). */
export async function withKitGateway(mod: PluginModule, o: TranslationConformanceOptions, dir: string | undefined, body: (k: KitGateway) => Promise<void>): Promise<void> {
  const address = o.address ?? "127.0.0.1";
  let pki = pkis.get(address);
  if (!pki) pkis.set(address, (pki = ensureDevPki(mkdtempSync(join(tmpdir(), "strata-kit-pki-")), { hostnames: ["localhost"], ips: [address] })));
  const p = await pki;
  const own = dir === undefined;
  const base = dir ?? mkdtempSync(join(tmpdir(), "strata-translation-kit-"));
  const logLines: string[] = [];
  const logger = createLogger({ level: "warn", destination: { write: (s: string) => void logLines.push(s) } });
  const config = validateConfig({
    hub: "kithub", device_id: "kit-gw", hostname: address === "127.0.0.1" ? "localhost" : address,
    data_dir: join(base, "data"),
    tls: { cert_file: p.paths.serverChain, key_file: p.paths.serverKey, ca_file: p.paths.trustBundle },
    listen: { address, mqtt: 0, amqp: 0, https: o.httpsPort ?? 0 },
  }, { source: "translation kit config", baseDir: base });
  const gw = await Gateway.start({ config, logger, defaultPlugins: [], extraPlugins: [{ module: mod, settings: o.settings ?? {}, essential: true }] });
  const recorder = TelemetryRecorder.attach(gw.hub, "translation-kit");
  const k: KitGateway = {
    gw, address, hubName: "kithub", caPem: p.trustBundle, recorder, logLines,
    port(name) {
      const l = gw.listeners.get(name);
      if (!l) throw fail(mod, `no listener named ${name} (have: ${gw.listeners.all().map((x) => x.name).join(", ")}); report yours to TOKENS.Listeners`);
      return l.port;
    },
    stats: () => translationStats(gw.hub, mod.manifest.name),
  };
  try {
    await o.prepare?.(k);
    await body(k);
  } finally {
    recorder.stop();
    await gw.stop();
    if (own) rmSync(base, { recursive: true, force: true });
  }
}

/** A device identity for drivers that authenticate (https-device): registers `deviceId` with a fresh key. */
export async function registerKitDevice(k: KitGateway, deviceId: string): Promise<string> {
  const existing = k.gw.identities.get(deviceId);
  if (existing?.auth.type === "sas") return existing.auth.primaryKey;
  const key = generateKey();
  await k.gw.identities.put({ id: deviceId, deviceId, status: "enabled", edge: false, auth: { type: "sas", primaryKey: key, secondaryKey: generateKey() } });
  return key;
}

function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

async function settledLeaks(before: Map<string, number>): Promise<string[]> {
  let leaked: string[] = [];
  for (let turn = 0; turn < 50; turn++) {
    leaked = [];
    for (const [type, n] of resourceCounts()) {
      // Timers come and go with pino and the store; sockets and servers are what a plugin leaks.
      if (type === "Timeout" || type === "Immediate" || type === "FSReqCallback") continue;
      const extra = n - (before.get(type) ?? 0);
      if (extra > 0) leaked.push(`${type} ×${extra}`);
    }
    if (leaked.length === 0) return leaked;
    await new Promise<void>((r) => setImmediate(r));
  }
  return leaked;
}
