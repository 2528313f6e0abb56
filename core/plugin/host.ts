import type { DependencyContainer } from "tsyringe";
import { PluginError, StrataAggregateError, StrataError } from "../errors.js";
import { silentLogger, type Logger, type LogLevel } from "../log.js";
import { TOKENS } from "../tokens.js";
import type { Plugin, PluginModule } from "./api.js";
import { withDeadline } from "./deadline.js";
import { orderPlugins, throwProblems } from "./manifest.js";
import { parsePluginConfig } from "./section.js";

/** One plugin to run: its module and its `[plugins.NAME]` section with the reserved keys already taken out. */
export interface PluginEntry {
  readonly module: PluginModule;
  /** The plugin's own settings (validated with its schema; `{}` when the section is absent). */
  readonly settings?: Record<string, unknown>;
  /** Overrides `manifest.essential`. */
  readonly essential?: boolean;
  /** Level of this plugin's logger (default: the host logger's level). */
  readonly logLevel?: LogLevel;
}

export interface PluginHostOptions {
  /** Parent of every plugin logger; default the parent container's TOKENS.Logger, else silent. */
  readonly logger?: Logger;
  /** Used when a manifest sets no startTimeoutMs (default 30 s). */
  readonly defaultStartTimeoutMs?: number;
  /** Used when a manifest sets no stopTimeoutMs (default 10 s). */
  readonly defaultStopTimeoutMs?: number;
}

export type PluginState = "pending" | "starting" | "running" | "failed" | "skipped" | "stopping" | "stopped";

export interface PluginStartReport {
  /** Running plugins, in start order. */
  readonly started: readonly string[];
  /** Optional plugins that failed to construct or start (logged, skipped). */
  readonly failed: readonly { name: string; error: Error }[];
  /** Plugins not started because a dependency is not running. */
  readonly skipped: readonly { name: string; reason: string }[];
}

interface Slot {
  readonly name: string;
  readonly module: PluginModule;
  readonly config: unknown;
  readonly essential: boolean;
  readonly logLevel: LogLevel | undefined;
  state: PluginState;
  instance?: Plugin;
  scope?: DependencyContainer;
}

/**
 * Runs plugins on tsyringe. The constructor validates everything before anything is constructed (each
 * manifest, dependsOn, cycles, each config section); `start` then gives each plugin, in dependency order,
 * its own child container with TOKENS.Logger (a pino child `{plugin}`) and TOKENS.PluginConfig (its
 * parsed section), calls `register(scope)`, resolves TOKENS.Plugin and starts it under a timeout.
 *
 * Sharing between plugins: a module lists tokens in `provides` and registers each in its own scope
 * during `register`; the host then registers the token in the parent container, delegating to the
 * provider's scope, so every plugin started after it resolves the token. A consumer names the provider in
 * `dependsOn` (resolving a token whose provider is not running throws STRATA_PLUGIN_PROVIDES). Plugins
 * never import each other.
 */
export class PluginHost {
  /** Start order (dependencies first). */
  readonly order: readonly string[];
  private readonly slots = new Map<string, Slot>();
  private readonly log: Logger;
  private readonly startTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  /** Aborted by stop(): a start still in progress gives up. */
  private readonly halt = new AbortController();
  private starting?: Promise<unknown>;
  private stopping?: Promise<void>;

  constructor(private readonly parent: DependencyContainer, entries: readonly PluginEntry[], options: PluginHostOptions = {}) {
    this.order = orderPlugins(entries.map((e) => e.module));
    this.log = options.logger ?? (parent.isRegistered(TOKENS.Logger, true) ? (parent.resolve(TOKENS.Logger) as Logger) : silentLogger());
    this.startTimeoutMs = options.defaultStartTimeoutMs ?? 30_000;
    this.stopTimeoutMs = options.defaultStopTimeoutMs ?? 10_000;
    const problems: StrataError[] = [];
    for (const e of entries) {
      const m = e.module.manifest;
      try {
        const config = parsePluginConfig(m.name, m.configSchema, e.settings ?? {});
        this.slots.set(m.name, { name: m.name, module: e.module, config, essential: e.essential ?? m.essential ?? false, logLevel: e.logLevel, state: "pending" });
      } catch (err) {
        problems.push(...(err instanceof StrataAggregateError ? (err.errors as StrataError[]) : [err as StrataError]));
      }
    }
    throwProblems(problems, "STRATA_PLUGIN_CONFIG", "plugin config sections are invalid");
  }

  state(name: string): PluginState | undefined {
    return this.slots.get(name)?.state;
  }

  /** The parsed, defaulted config of a plugin. */
  configOf(name: string): unknown {
    return this.slots.get(name)?.config;
  }

  /**
   * Starts every plugin in dependency order. An optional plugin that fails is logged with its cause and
   * skipped with its dependents; an essential one makes start reject (STRATA_PLUGIN_ESSENTIAL, cause
   * attached) after the plugins already started are stopped. Aborting `signal` (or calling stop()) stops
   * what started and rejects with STRATA_PLUGIN_START_ABORTED.
   */
  start(signal?: AbortSignal): Promise<PluginStartReport> {
    if (this.starting) return Promise.reject(new StrataError("STRATA_PLUGIN_HOST_STATE", "the plugin host was already started; create a new PluginHost to start again"));
    const p = this.startAll(signal ? AbortSignal.any([signal, this.halt.signal]) : this.halt.signal);
    this.starting = p.catch(() => undefined);
    return p;
  }

  private async startAll(signal: AbortSignal): Promise<PluginStartReport> {
    const started: string[] = [];
    const failed: { name: string; error: Error }[] = [];
    const skipped: { name: string; reason: string }[] = [];
    for (const name of this.order) {
      const slot = this.slots.get(name)!;
      if (signal.aborted) break;
      const down = (slot.module.manifest.dependsOn ?? []).filter((d) => this.slots.get(d)?.state !== "running");
      let error: Error | undefined;
      if (down.length > 0) {
        const reason = `dependency ${down.join(", ")} is not running`;
        slot.state = "skipped";
        if (!slot.essential) {
          skipped.push({ name, reason });
          this.log.warn({ plugin: name, dependsOn: down }, "plugin skipped");
          continue;
        }
        error = new PluginError(name, "STRATA_PLUGIN_DEPENDENCY", `${reason}; see the error logged for ${down.join(", ")}`);
      } else {
        error = await this.startOne(slot, signal);
        if (!error) {
          started.push(name);
          continue;
        }
        if (signal.aborted) break;
      }
      if (!slot.essential) {
        failed.push({ name, error });
        this.log.error({ plugin: name, err: error }, "plugin failed to start");
        continue;
      }
      this.log.fatal({ plugin: name, err: error }, "essential plugin failed to start");
      await this.stopRunning().catch((err: unknown) => this.log.error({ err }, "plugins failed to stop"));
      throw new PluginError(name, "STRATA_PLUGIN_ESSENTIAL", `essential plugin failed to start: ${error.message}`, { cause: error });
    }
    if (signal.aborted) {
      await this.stopRunning().catch((err: unknown) => this.log.error({ err }, "plugins failed to stop"));
      throw new StrataError("STRATA_PLUGIN_START_ABORTED", "plugin start was aborted (shutdown requested); the plugins already started were stopped", { cause: signal.reason });
    }
    this.log.info({ started, failed: failed.map((f) => f.name), skipped: skipped.map((s) => s.name) }, "plugins started");
    return { started, failed, skipped };
  }

  /** Constructs and starts one plugin; returns the error instead of throwing, after undoing partial work. */
  private async startOne(slot: Slot, signal: AbortSignal): Promise<Error | undefined> {
    const name = slot.name;
    slot.state = "starting";
    try {
      slot.instance = this.construct(slot);
    } catch (err) {
      slot.state = "failed";
      return err instanceof PluginError ? err : new PluginError(name, "STRATA_PLUGIN_REGISTER", `could not be constructed: ${(err as Error)?.message ?? String(err)}; check its register() and that every constructor parameter has @inject(TOKEN) with a registered token`, { cause: err });
    }
    const ms = slot.module.manifest.startTimeoutMs ?? this.startTimeoutMs;
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => ac.abort(new PluginError(name, "STRATA_PLUGIN_START_TIMEOUT", `start did not finish within ${ms} ms; check what it waits for, or raise manifest.startTimeoutMs`)), ms);
    try {
      this.log.debug({ plugin: name }, "plugin starting");
      await withDeadline(Promise.resolve().then(() => slot.instance!.start(ac.signal)), ms + 1_000, () => ac.signal.reason as Error, ac.signal);
      slot.state = "running";
      this.log.info({ plugin: name }, "plugin started");
      return undefined;
    } catch (err) {
      slot.state = "failed";
      // Best effort: stop() is safe in any state and releases whatever a half-done start left behind.
      await this.stopOne(slot).catch((e: unknown) => this.log.warn({ plugin: name, err: e }, "plugin failed to stop after failed start"));
      slot.state = "failed";
      if (err instanceof PluginError) return err;
      return new PluginError(name, "STRATA_PLUGIN_START", `failed to start: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  private construct(slot: Slot): Plugin {
    const name = slot.name;
    const scope = this.parent.createChildContainer();
    slot.scope = scope;
    const logger = this.log.child({ plugin: name }, slot.logLevel ? { level: slot.logLevel } : undefined);
    scope.register(TOKENS.Logger, { useValue: logger });
    scope.register(TOKENS.PluginConfig, { useValue: slot.config });
    slot.module.register(scope);
    for (const token of slot.module.provides ?? []) {
      if (!scope.isRegistered(token, false)) {
        throw new PluginError(name, "STRATA_PLUGIN_PROVIDES", `lists ${String(token)} in provides but register() did not register it in its scope; register it there (scope.register(token, ...))`);
      }
      if (this.parent.isRegistered(token, true)) {
        throw new PluginError(name, "STRATA_PLUGIN_PROVIDES", `provides ${String(token)}, which is already registered in the parent container (a core service?); remove it from provides`);
      }
      this.parent.register(token, {
        useFactory: () => {
          if (slot.state !== "running" && slot.state !== "starting") {
            throw new PluginError(name, "STRATA_PLUGIN_PROVIDES", `${String(token)} is provided by plugin ${name}, which is ${slot.state}; a consumer must list "${name}" in dependsOn`);
          }
          return scope.resolve(token);
        },
      });
    }
    if (!scope.isRegistered(TOKENS.Plugin, false)) {
      throw new PluginError(name, "STRATA_PLUGIN_REGISTER", "register() did not register TOKENS.Plugin; add scope.register(TOKENS.Plugin, { useClass: YourPlugin })");
    }
    const instance = scope.resolve(TOKENS.Plugin) as Plugin;
    if (typeof instance?.start !== "function" || typeof instance.stop !== "function") {
      throw new PluginError(name, "STRATA_PLUGIN_REGISTER", "TOKENS.Plugin resolved to an object without start(signal) and stop(); register a class implementing Plugin");
    }
    return instance;
  }

  private async stopOne(slot: Slot): Promise<void> {
    if (!slot.instance) return;
    const ms = slot.module.manifest.stopTimeoutMs ?? this.stopTimeoutMs;
    slot.state = "stopping";
    try {
      await withDeadline(Promise.resolve().then(() => slot.instance!.stop()), ms, () =>
        new PluginError(slot.name, "STRATA_PLUGIN_STOP_TIMEOUT", `stop did not finish within ${ms} ms; it may hold a socket or timer open (raise manifest.stopTimeoutMs if it needs longer)`));
      slot.state = "stopped";
    } catch (err) {
      slot.state = "stopped";
      if (err instanceof PluginError) throw err;
      throw new PluginError(slot.name, "STRATA_PLUGIN_STOP", `failed to stop: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }

  /** Stops running plugins in reverse start order, each bounded; keeps going; one error naming each failure. */
  private async stopRunning(): Promise<void> {
    const errors: PluginError[] = [];
    const running = this.order.filter((n) => this.slots.get(n)!.state === "running").reverse();
    for (const name of running) {
      try {
        await this.stopOne(this.slots.get(name)!);
        this.log.info({ plugin: name }, "plugin stopped");
      } catch (err) {
        errors.push(err as PluginError);
        this.log.error({ plugin: name, err }, "plugin failed to stop");
      }
    }
    if (errors.length > 0) {
      throw new StrataAggregateError("STRATA_PLUGIN_STOP", `${errors.length} plugin${errors.length === 1 ? "" : "s"} failed to stop (${errors.map((e) => e.plugin).join(", ")})`, errors);
    }
  }

  /**
   * Stops every running plugin in reverse start order (a start in progress is aborted first). Each stop is
   * bounded by its timeout; failures do not stop the others and are reported together
   * (StrataAggregateError STRATA_PLUGIN_STOP, one PluginError per plugin). Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.halt.abort(new StrataError("STRATA_PLUGIN_START_ABORTED", "the plugin host is stopping"));
      await this.starting;
      await this.stopRunning();
    })();
    return this.stopping;
  }
}
