import type { ZodType } from "zod";
import { PluginError, StrataAggregateError } from "../errors.js";
import type { LogLevel } from "../log.js";
import { describeIssues } from "../config/issues.js";
import { LOG_LEVELS } from "../config/schema.js";

/**
 * Keys of a `[plugins.NAME]` section that belong to the host, not to the plugin. They are stripped before
 * the plugin's schema sees the section, so a plugin schema must not use them:
 * - `enabled` (boolean, default true): false skips the plugin entirely (not loaded, not validated).
 * - `package` (string): the npm package to load it from; absent means the built-in `plugins/NAME`.
 * - `essential` (boolean): overrides `manifest.essential`; an essential plugin that fails to start stops
 *   the gateway, an optional one is logged and skipped with its dependents.
 * - `log_level` (fatal|error|warn|info|debug|trace|silent): the level of this plugin's logger.
 */
export const RESERVED_PLUGIN_KEYS = ["enabled", "package", "essential", "log_level"] as const;

export interface PluginSectionControls {
  enabled: boolean;
  package?: string;
  essential?: boolean;
  logLevel?: LogLevel;
}

/** Splits a raw section into the host's reserved keys (checked here) and the plugin's own settings. */
export function splitPluginSection(name: string, raw: unknown): { controls: PluginSectionControls; settings: Record<string, unknown> } {
  if (raw === undefined) return { controls: { enabled: true }, settings: {} };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new PluginError(name, "STRATA_PLUGIN_CONFIG", `plugins.${name} must be a table ([plugins.${name}])`);
  }
  const { enabled, package: pkg, essential, log_level, ...settings } = raw as Record<string, unknown>;
  const problems: PluginError[] = [];
  const bad = (key: string, expected: string, v: unknown) =>
    problems.push(new PluginError(name, "STRATA_PLUGIN_CONFIG", `plugins.${name}.${key} must be ${expected}, got ${JSON.stringify(v)}`));
  if (enabled !== undefined && typeof enabled !== "boolean") bad("enabled", "true or false", enabled);
  if (essential !== undefined && typeof essential !== "boolean") bad("essential", "true or false", essential);
  if (pkg !== undefined && (typeof pkg !== "string" || pkg === "")) bad("package", "an npm package name", pkg);
  if (log_level !== undefined && !(LOG_LEVELS as readonly unknown[]).includes(log_level)) bad("log_level", `one of ${LOG_LEVELS.join(", ")}`, log_level);
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) throw new StrataAggregateError("STRATA_PLUGIN_CONFIG", `plugins.${name} is invalid`, problems);
  return {
    controls: {
      enabled: enabled !== false,
      ...(pkg !== undefined ? { package: pkg as string } : {}),
      ...(essential !== undefined ? { essential: essential as boolean } : {}),
      ...(log_level !== undefined ? { logLevel: log_level as LogLevel } : {}),
    },
    settings,
  };
}

/**
 * Validates a plugin's settings with its schema: defaults applied, unknown top-level keys refused (an
 * object schema is made strict unless it declares a catchall; nested tables should use z.strictObject),
 * every problem named by its full path `plugins.NAME.key`. Throws STRATA_PLUGIN_CONFIG.
 */
export function parsePluginConfig(name: string, schema: ZodType, settings: Record<string, unknown>): unknown {
  const result = strictTop(schema).safeParse(settings);
  if (result.success) return result.data;
  const lines = describeIssues(result.error.issues, settings, ["plugins", name]);
  const problems = lines.map((l) => new PluginError(name, "STRATA_PLUGIN_CONFIG", l));
  if (problems.length === 1) throw problems[0]!;
  throw new StrataAggregateError("STRATA_PLUGIN_CONFIG", `plugins.${name} is invalid`, problems);
}

interface MaybeObjectSchema {
  _zod?: { def?: { type?: string; catchall?: unknown } };
  strict?: () => ZodType;
}

/** Duck-typed so a plugin's own copy of zod works too (instanceof would not). */
function strictTop(schema: ZodType): ZodType {
  const s = schema as unknown as MaybeObjectSchema;
  if (s._zod?.def?.type === "object" && s._zod.def.catchall === undefined && typeof s.strict === "function") {
    return s.strict();
  }
  return schema;
}
