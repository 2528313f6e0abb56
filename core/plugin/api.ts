import type { DependencyContainer } from "tsyringe";
import type { ZodType } from "zod";

/** The plugin API version this core implements; a manifest's `apiVersion` range must admit it. */
export const PLUGIN_API_VERSION = "1.0.0";

/** A running piece of the gateway. Constructed by the host from its child container. */
export interface Plugin {
  /** Bind, listen, connect. On failure undo partial work and reject (a PluginError when possible). */
  start(signal: AbortSignal): Promise<void>;
  /** Release everything. Idempotent, and safe before start(). */
  stop(): Promise<void>;
}

export interface PluginManifest<S extends ZodType = ZodType> {
  /** The key of its config section, `[plugins.NAME]`. */
  readonly name: string;
  /** A semver range of the plugin API it was written against, e.g. "^1". */
  readonly apiVersion: string;
  /** Plugins that must start before this one (and stop after it). */
  readonly dependsOn?: readonly string[];
  /** zod schema of `[plugins.NAME]`; defaults alone must make a valid config. */
  readonly configSchema: S;
  /** An essential plugin that fails to start stops the gateway; an optional one is logged and skipped. */
  readonly essential?: boolean;
  /** Start timeout in ms (default 30 s). */
  readonly startTimeoutMs?: number;
  /** Stop timeout in ms (default 10 s). */
  readonly stopTimeoutMs?: number;
}

/** What a plugin package exports (as `default` or `plugin`). */
export interface PluginModule<S extends ZodType = ZodType> {
  readonly manifest: PluginManifest<S>;
  /**
   * Wiring only, no I/O: register the plugin class under TOKENS.Plugin (and any token it provides to
   * others) in its own child container. The host has already registered Logger and PluginConfig there.
   */
  register(scope: DependencyContainer): void;
  /**
   * Tokens this plugin provides to the others. `register` registers each in its own scope; the host then
   * makes it resolvable from the parent container (delegating to that scope), for the plugins that list
   * this one in `dependsOn`. Plugins never import each other.
   */
  readonly provides?: readonly symbol[];
  /** `strata` sub-commands this plugin adds (e.g. the root's `telemetry tail`); run without starting the gateway. */
  readonly commands?: readonly PluginCommand[];
}

/** A `strata` sub-command contributed by a plugin: `strata <name…> [args]`. */
export interface PluginCommand {
  /** Words after `strata`, e.g. "telemetry tail". */
  readonly name: string;
  readonly summary: string;
  /** Usage text shown by `strata help <name>`. */
  readonly usage?: string;
  /** Returns the process exit code. `config` is the validated gateway config. */
  run(args: readonly string[], context: PluginCommandContext): Promise<number>;
}

export interface PluginCommandContext {
  /** The validated gateway config (StrataConfig from core/config). */
  readonly config: unknown;
  /** This plugin's data folder: `<data_dir>/plugins/<name>`. */
  readonly dataDir: string;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Aborted on SIGINT/SIGTERM (for `--follow`). */
  readonly signal: AbortSignal;
}

/** Identity helper that keeps the config type attached to the manifest. */
export function definePlugin<S extends ZodType>(mod: PluginModule<S>): PluginModule<S> {
  return mod;
}
