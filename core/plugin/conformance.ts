// Loads the Reflect polyfill tsyringe needs, whichever module a plugin test imports first.
import "reflect-metadata";
import { container as rootContainer, type DependencyContainer, type InjectionToken } from "tsyringe";
import { PluginError, StrataError } from "../errors.js";
import { silentLogger } from "../log.js";
import { TOKENS } from "../tokens.js";
import type { Plugin, PluginModule } from "./api.js";
import { withDeadline } from "./deadline.js";
import { checkManifest } from "./manifest.js";
import { parsePluginConfig } from "./section.js";

/** tsyringe's metadata key for `@inject` tokens, per parameter index. */
const INJECTION_TOKENS_KEY = "injectionTokens";

export interface ConformanceOptions {
  /** Registers the core services the plugin injects (Hub, Store, HttpFront, test doubles) in the kit's container. */
  readonly provide?: (container: DependencyContainer) => void;
  /** A valid `[plugins.NAME]` section for the start/stop checks (default `{}`: the schema's defaults). Use port 0. */
  readonly config?: Record<string, unknown>;
  /** An invalid section: validation must fail with an error naming one of its keys as `plugins.NAME.key`. */
  readonly invalidConfig?: Record<string, unknown>;
  /** Bound on each start and stop (default 10 s). */
  readonly timeoutMs?: number;
  /** Resource types (as process.getActiveResourcesInfo() names them) the leak checks ignore. */
  readonly ignoreResources?: readonly string[];
}

export interface ConformanceCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly error?: Error;
}

export interface ConformanceReport {
  readonly plugin: string;
  readonly ok: boolean;
  readonly checks: readonly ConformanceCheck[];
}

interface CheckDef {
  readonly name: string;
  run(mod: PluginModule, o: ConformanceOptions): Promise<void>;
}

const CHECKS: readonly CheckDef[] = [
  { name: "manifest is well formed and defaults alone make a valid config", run: checkManifestAndDefaults },
  { name: "every constructor parameter has an explicit @inject", run: checkInjects },
  { name: "an invalid config is refused with an error naming the key", run: checkInvalidConfig },
  { name: "stop() before start() and stop() twice are safe", run: checkStopBeforeStart },
  { name: "start then stop (twice) leaves no new active handles", run: checkNoLeaks },
  { name: "an aborted start rejects and leaves nothing listening", run: checkAbortedStart },
];

/** The names of the checks, in the order they run. */
export const CONFORMANCE_CHECKS: readonly string[] = CHECKS.map((c) => c.name);

/**
 * Runs every conformance check against a plugin module and reports each (name, ok, error). Never throws
 * for a failing plugin: read `report.ok`. Checks run one after another, each on a fresh container.
 */
export async function checkPluginConformance(mod: PluginModule, options: ConformanceOptions = {}): Promise<ConformanceReport> {
  const checks: ConformanceCheck[] = [];
  for (const c of CHECKS) checks.push(await runCheck(c, mod, options));
  return { plugin: nameOf(mod), ok: checks.every((c) => c.ok), checks };
}

/**
 * Registers one node:test test per conformance check, so a plugin's conformance test file is three lines:
 * ```ts
 * import { pluginConformanceSuite } from "strata";
 * import plugin from "../index.js";
 * pluginConformanceSuite(plugin, { config: { port: 0 } });
 * ```
 */
export function pluginConformanceSuite(mod: PluginModule, options: ConformanceOptions = {}): void {
  // Loaded here, not at the top: production code imports core's face and must not load the test runner.
  const { describe, test } = require("node:test") as typeof import("node:test");
  describe(`plugin conformance: ${nameOf(mod)}`, () => {
    for (const c of CHECKS) {
      test(c.name, async () => {
        const r = await runCheck(c, mod, options);
        if (!r.ok) throw r.error;
      });
    }
  });
}

async function runCheck(c: CheckDef, mod: PluginModule, o: ConformanceOptions): Promise<ConformanceCheck> {
  try {
    await c.run(mod, o);
    return { name: c.name, ok: true };
  } catch (err) {
    return { name: c.name, ok: false, error: err instanceof Error ? err : new Error(String(err)) };
  }
}

function nameOf(mod: PluginModule): string {
  return typeof mod?.manifest?.name === "string" ? mod.manifest.name : "plugin";
}

function fail(mod: PluginModule, message: string, cause?: unknown): PluginError {
  return new PluginError(nameOf(mod), "STRATA_PLUGIN_CONFORMANCE", message, cause === undefined ? undefined : { cause });
}

async function checkManifestAndDefaults(mod: PluginModule): Promise<void> {
  const problems = checkManifest(mod);
  if (problems.length > 0) throw fail(mod, problems.map((p) => p.message).join("; "), problems[0]);
  try {
    parsePluginConfig(mod.manifest.name, mod.manifest.configSchema, {});
  } catch (err) {
    throw fail(mod, `an empty [plugins.${mod.manifest.name}] section must be valid (give every key a default): ${(err as Error).message}`, err);
  }
}

interface Wired {
  readonly scope: DependencyContainer;
  /** The class registered under TOKENS.Plugin, when registered as a class. */
  readonly pluginClass?: Function;
}

/** Wires the plugin the way the host does: child container, Logger, PluginConfig, register(). */
function wire(mod: PluginModule, o: ConformanceOptions, settings: Record<string, unknown> = o.config ?? {}): Wired {
  const name = mod.manifest.name;
  const parent = rootContainer.createChildContainer();
  o.provide?.(parent);
  const scope = parent.createChildContainer();
  scope.register(TOKENS.Logger, { useValue: silentLogger().child({ plugin: name }) });
  scope.register(TOKENS.PluginConfig, { useValue: parsePluginConfig(name, mod.manifest.configSchema, settings) });
  let pluginClass: Function | undefined;
  const capture = (provider: unknown) => {
    const p = provider as { useClass?: Function; useToken?: unknown };
    if (typeof provider === "function") pluginClass = provider;
    else if (typeof p?.useClass === "function") pluginClass = p.useClass;
    else if (typeof p?.useToken === "function") pluginClass = p.useToken;
  };
  // Record what register() puts under TOKENS.Plugin, so the class's @inject metadata can be read.
  const register = scope.register.bind(scope);
  const registerSingleton = scope.registerSingleton.bind(scope);
  scope.register = ((token: InjectionToken, provider: unknown, opts?: unknown) => {
    if (token === TOKENS.Plugin) capture(provider);
    return (register as (...a: unknown[]) => DependencyContainer)(token, provider, opts);
  }) as DependencyContainer["register"];
  scope.registerSingleton = ((from: InjectionToken, to?: unknown) => {
    if (from === TOKENS.Plugin) capture(to ?? from);
    return (registerSingleton as (...a: unknown[]) => DependencyContainer)(from, to);
  }) as DependencyContainer["registerSingleton"];
  mod.register(scope);
  if (!scope.isRegistered(TOKENS.Plugin, false)) {
    throw fail(mod, "register() did not register TOKENS.Plugin; add scope.register(TOKENS.Plugin, { useClass: YourPlugin })");
  }
  return { scope, ...(pluginClass ? { pluginClass } : {}) };
}

/** A fresh plugin instance, constructed the way the host does. */
function build(mod: PluginModule, o: ConformanceOptions): Plugin {
  let instance: Plugin;
  try {
    instance = wire(mod, o).scope.resolve(TOKENS.Plugin) as Plugin;
  } catch (err) {
    if (err instanceof PluginError && err.code === "STRATA_PLUGIN_CONFORMANCE") throw err;
    throw fail(mod, `could not be constructed: ${(err as Error).message}; give every constructor parameter @inject(TOKEN) and provide core services with options.provide`, err);
  }
  if (typeof instance?.start !== "function" || typeof instance.stop !== "function") {
    throw fail(mod, "TOKENS.Plugin resolved to an object without start(signal) and stop()");
  }
  return instance;
}

async function checkInjects(mod: PluginModule, o: ConformanceOptions): Promise<void> {
  const cls = wire(mod, o).pluginClass;
  if (!cls) {
    throw fail(mod, "TOKENS.Plugin is registered with useValue/useFactory, so its constructor cannot be checked; register it with { useClass } or registerSingleton");
  }
  const tokens = (Reflect.getOwnMetadata(INJECTION_TOKENS_KEY, cls) ?? {}) as Record<string, unknown>;
  const missing: number[] = [];
  for (let i = 0; i < cls.length; i++) if (!(String(i) in tokens)) missing.push(i + 1);
  if (missing.length > 0) {
    throw fail(mod, `constructor parameter${missing.length > 1 ? "s" : ""} ${missing.map((i) => `#${i}`).join(", ")} of ${cls.name || "the plugin class"} ha${missing.length > 1 ? "ve" : "s"} no @inject(TOKEN); add it (without decorator metadata, under tsx or esbuild, the parameter would silently be undefined)`);
  }
  build(mod, o);
}

async function checkInvalidConfig(mod: PluginModule, o: ConformanceOptions): Promise<void> {
  const name = mod.manifest.name;
  const unknownKey = "conformance_unknown_key";
  const samples: [Record<string, unknown>, string[]][] = [[{ [unknownKey]: 1 }, [unknownKey]]];
  if (o.invalidConfig) samples.push([o.invalidConfig, Object.keys(o.invalidConfig)]);
  for (const [sample, keys] of samples) {
    let accepted = true;
    try {
      parsePluginConfig(name, mod.manifest.configSchema, sample);
    } catch (err) {
      accepted = false;
      const msg = (err as Error).message;
      if (!(err instanceof StrataError) || !keys.some((k) => msg.includes(`plugins.${name}.${k}`))) {
        throw fail(mod, `the error for ${JSON.stringify(sample)} does not name plugins.${name}.${keys.join(" or ")}: ${msg}`, err);
      }
    }
    if (accepted) throw fail(mod, `the invalid config ${JSON.stringify(sample)} was accepted; tighten the schema (or declare no catchall)`);
  }
}

async function bounded(mod: PluginModule, o: ConformanceOptions, what: string, work: () => Promise<void>): Promise<void> {
  const ms = o.timeoutMs ?? 10_000;
  await withDeadline(Promise.resolve().then(work), ms, () => fail(mod, `${what} did not finish within ${ms} ms`));
}

async function checkStopBeforeStart(mod: PluginModule, o: ConformanceOptions): Promise<void> {
  const instance = build(mod, o);
  try {
    await bounded(mod, o, "stop() before start()", () => instance.stop());
    await bounded(mod, o, "a second stop()", () => instance.stop());
  } catch (err) {
    if (err instanceof PluginError && err.code === "STRATA_PLUGIN_CONFORMANCE") throw err;
    throw fail(mod, `stop() before start() (or twice) threw: ${(err as Error).message}; make stop() idempotent and safe in any state`, err);
  }
}

async function checkNoLeaks(mod: PluginModule, o: ConformanceOptions): Promise<void> {
  const instances = [build(mod, o), build(mod, o)];
  const before = resourceCounts(o);
  for (const [i, instance] of instances.entries()) {
    await bounded(mod, o, `start() (round ${i + 1})`, () => instance.start(new AbortController().signal));
    await bounded(mod, o, `stop() (round ${i + 1})`, () => instance.stop());
    await bounded(mod, o, `a second stop() (round ${i + 1})`, () => instance.stop());
  }
  const leaked = await settledLeaks(before, o);
  if (leaked.length > 0) {
    throw fail(mod, `after start → stop the process holds new active resources: ${leaked.join(", ")}; close every server, socket and timer in stop()`);
  }
}

async function checkAbortedStart(mod: PluginModule, o: ConformanceOptions): Promise<void> {
  // 1. Already aborted: start must reject and open nothing.
  const first = build(mod, o);
  const second = build(mod, o);
  let before = resourceCounts(o);
  let rejected = false;
  try {
    await bounded(mod, o, "start() with an aborted signal", () => first.start(AbortSignal.abort(new Error("conformance: aborted before start"))));
  } catch (err) {
    if (err instanceof PluginError && err.code === "STRATA_PLUGIN_CONFORMANCE") throw err;
    rejected = true;
  }
  let leaked = await settledLeaks(before, o);
  await first.stop();
  if (!rejected) throw fail(mod, "start() with an already aborted signal resolved; check signal.throwIfAborted() before doing work");
  if (leaked.length > 0) throw fail(mod, `an aborted start left active resources behind: ${leaked.join(", ")}; undo partial work before rejecting`);
  // 2. Aborted while starting: if start rejects, it must leave nothing behind either.
  before = resourceCounts(o);
  const ac = new AbortController();
  let outcome: "resolved" | "rejected" = "resolved";
  try {
    await bounded(mod, o, "start() aborted while starting", () => {
      const p = second.start(ac.signal);
      ac.abort(new Error("conformance: aborted during start"));
      return p;
    });
  } catch (err) {
    if (err instanceof PluginError && err.code === "STRATA_PLUGIN_CONFORMANCE") throw err;
    outcome = "rejected";
  }
  if (outcome === "rejected") {
    leaked = await settledLeaks(before, o);
    await second.stop();
    if (leaked.length > 0) throw fail(mod, `a start aborted midway left active resources behind: ${leaked.join(", ")}; undo partial work before rejecting`);
  } else {
    await second.stop();
  }
}

function resourceCounts(o: ConformanceOptions): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) {
    if (o.ignoreResources?.includes(r)) continue;
    counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  return counts;
}

/** New resources compared with `before`, after letting pending closes finish (a few event-loop turns). */
async function settledLeaks(before: Map<string, number>, o: ConformanceOptions): Promise<string[]> {
  let leaked: string[] = [];
  for (let turn = 0; turn < 20; turn++) {
    leaked = [];
    for (const [type, n] of resourceCounts(o)) {
      const extra = n - (before.get(type) ?? 0);
      if (extra > 0) leaked.push(`${type} ×${extra}`);
    }
    if (leaked.length === 0) return leaked;
    await new Promise<void>((r) => setImmediate(r));
  }
  return leaked;
}
