import semver from "semver";
import { PluginError, StrataAggregateError, StrataError } from "../errors.js";
import { PLUGIN_API_VERSION, type PluginModule } from "./api.js";

/** Config section names and plugin names: what a TOML bare key and an npm-ish folder name both accept. */
const PLUGIN_NAME = /^[a-z][a-z0-9_-]{0,63}$/;

/**
 * Checks one manifest on its own (no I/O, nothing constructed): name, apiVersion admits this core,
 * schema present, dependsOn well formed, timeouts sane, register a function. Returns every problem.
 */
export function checkManifest(mod: PluginModule, label = "plugin"): PluginError[] {
  const problems: PluginError[] = [];
  const m = mod?.manifest as PluginModule["manifest"] | undefined;
  const name = typeof m?.name === "string" && m.name !== "" ? m.name : label;
  const fail = (code: string, msg: string) => problems.push(new PluginError(name, code, msg));
  if (!m || typeof m !== "object") {
    fail("STRATA_PLUGIN_MANIFEST", "the module has no `manifest`; export definePlugin({ manifest, register }) as default or `plugin`");
    return problems;
  }
  if (typeof m.name !== "string" || !PLUGIN_NAME.test(m.name)) {
    fail("STRATA_PLUGIN_MANIFEST", `manifest.name ${JSON.stringify(m.name)} must match ${PLUGIN_NAME} (it is the key of [plugins.NAME])`);
  }
  if (typeof m.apiVersion !== "string" || semver.validRange(m.apiVersion) === null) {
    fail("STRATA_PLUGIN_MANIFEST", `manifest.apiVersion ${JSON.stringify(m.apiVersion)} is not a semver range; use e.g. "^1"`);
  } else if (!semver.satisfies(PLUGIN_API_VERSION, m.apiVersion)) {
    fail(
      "STRATA_PLUGIN_API_VERSION",
      `manifest.apiVersion "${m.apiVersion}" does not admit this core's plugin API ${PLUGIN_API_VERSION}; install a plugin version built for API ^${semver.major(PLUGIN_API_VERSION)}, or a core that matches the plugin`,
    );
  }
  if (!m.configSchema || typeof (m.configSchema as { safeParse?: unknown }).safeParse !== "function") {
    fail("STRATA_PLUGIN_MANIFEST", "manifest.configSchema must be a zod schema (z.object({...}) with defaults; z.object({}) when it takes no config)");
  }
  if (m.dependsOn !== undefined && (!Array.isArray(m.dependsOn) || m.dependsOn.some((d) => typeof d !== "string"))) {
    fail("STRATA_PLUGIN_MANIFEST", "manifest.dependsOn must be an array of plugin names");
  } else if (m.dependsOn?.includes(m.name)) {
    fail("STRATA_PLUGIN_CYCLE", "manifest.dependsOn names the plugin itself; remove it");
  }
  for (const key of ["startTimeoutMs", "stopTimeoutMs"] as const) {
    const v = m[key];
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && v > 0)) {
      fail("STRATA_PLUGIN_MANIFEST", `manifest.${key} must be a positive number of milliseconds`);
    }
  }
  if (typeof mod.register !== "function") {
    fail("STRATA_PLUGIN_MANIFEST", "the module has no register(scope) function; it must register the plugin class under TOKENS.Plugin");
  }
  if (mod.provides !== undefined && (!Array.isArray(mod.provides) || mod.provides.some((t) => typeof t !== "symbol"))) {
    fail("STRATA_PLUGIN_MANIFEST", "`provides` must be an array of symbols (tokens made with Symbol.for)");
  }
  return problems;
}

/**
 * Checks a set of plugins together: each manifest, unique names, every dependsOn present, no cycles,
 * no token provided twice. Returns the names in start order (dependencies first; otherwise the given
 * order). Throws one error listing every problem.
 */
export function orderPlugins(mods: readonly PluginModule[]): string[] {
  const problems: PluginError[] = [];
  const byName = new Map<string, PluginModule>();
  mods.forEach((mod, i) => {
    const own = checkManifest(mod, `#${i + 1}`);
    problems.push(...own);
    if (own.length > 0) return;
    const name = mod.manifest.name;
    if (byName.has(name)) {
      problems.push(new PluginError(name, "STRATA_PLUGIN_DUPLICATE", "two plugins have this name; enable only one of them"));
    }
    byName.set(name, mod);
  });
  const providers = new Map<symbol, string>();
  for (const [name, mod] of byName) {
    for (const dep of mod.manifest.dependsOn ?? []) {
      if (!byName.has(dep)) {
        problems.push(new PluginError(name, "STRATA_PLUGIN_DEPENDENCY", `depends on plugin "${dep}", which is not enabled; add a [plugins.${dep}] section (or enable it), or disable ${name}`));
      }
    }
    for (const token of mod.provides ?? []) {
      const other = providers.get(token);
      if (other) problems.push(new PluginError(name, "STRATA_PLUGIN_PROVIDES", `provides ${String(token)}, which plugin ${other} provides too; enable only one of them`));
      providers.set(token, name);
    }
  }
  const order: string[] = [];
  // Depth-first topological sort; a grey node met again closes a cycle, reported once with its path.
  const state = new Map<string, "grey" | "black">();
  const visit = (name: string, path: string[]): void => {
    const s = state.get(name);
    if (s === "black") return;
    if (s === "grey") {
      const cycle = [...path.slice(path.indexOf(name)), name];
      problems.push(new PluginError(name, "STRATA_PLUGIN_CYCLE", `dependency cycle ${cycle.join(" -> ")}; remove one of these dependsOn entries`));
      return;
    }
    state.set(name, "grey");
    for (const dep of byName.get(name)!.manifest.dependsOn ?? []) if (byName.has(dep)) visit(dep, [...path, name]);
    state.set(name, "black");
    order.push(name);
  };
  for (const name of byName.keys()) visit(name, []);
  throwProblems(problems, "STRATA_PLUGIN_MANIFEST", "plugin manifests are invalid");
  return order;
}

/** One problem is thrown as is (its own code); several as one aggregate naming each. */
export function throwProblems(problems: readonly StrataError[], code: string, message: string): void {
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) throw new StrataAggregateError(code, message, problems);
}
