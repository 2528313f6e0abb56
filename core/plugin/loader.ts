import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { PluginError, StrataError } from "../errors.js";
import type { PluginModule } from "./api.js";
import type { PluginEntry } from "./host.js";
import { throwProblems } from "./manifest.js";
import { splitPluginSection } from "./section.js";

export interface LoadPluginsOptions {
  /** Folder of compiled built-in plugins: `<builtinDir>/<name>/index.js` (the CLI passes dist/plugins). */
  readonly builtinDir: string;
  /** Folders whose node_modules hold third-party plugin packages (default: the current directory). */
  readonly packageDirs?: readonly string[];
  /** Built-in plugins that run even without a `[plugins.NAME]` section (unless `enabled = false`). */
  readonly defaults?: readonly string[];
}

/**
 * Turns the `[plugins.*]` sections of the config into host entries: for each enabled section (and each
 * default built-in), strips the reserved keys (see RESERVED_PLUGIN_KEYS), then loads the plugin with
 * `require`: from `package` (an npm package, resolved from `packageDirs`) or else the built-in folder.
 * Third-party packages take `strata` (core) and `tsyringe` as peer dependencies, so the container and
 * tokens they use are core's. Every problem is collected into one error.
 */
export function loadPluginEntries(sections: Readonly<Record<string, unknown>>, options: LoadPluginsOptions): PluginEntry[] {
  const names = [...new Set([...(options.defaults ?? []), ...Object.keys(sections)])];
  const entries: PluginEntry[] = [];
  const problems: StrataError[] = [];
  for (const name of names) {
    try {
      const { controls, settings } = splitPluginSection(name, sections[name]);
      if (!controls.enabled) continue;
      const mod = controls.package !== undefined
        ? loadPackagePlugin(name, controls.package, options.packageDirs ?? [process.cwd()])
        : loadBuiltinPlugin(name, options.builtinDir);
      if (mod.manifest?.name !== name) {
        throw new PluginError(name, "STRATA_PLUGIN_LOAD", `the module loaded for [plugins.${name}] names itself "${mod.manifest?.name}"; rename the section to [plugins.${mod.manifest?.name}] or fix plugins.${name}.package`);
      }
      entries.push({
        module: mod,
        settings,
        ...(controls.essential !== undefined ? { essential: controls.essential } : {}),
        ...(controls.logLevel !== undefined ? { logLevel: controls.logLevel } : {}),
      });
    } catch (err) {
      problems.push(err as StrataError);
    }
  }
  throwProblems(problems, "STRATA_PLUGIN_LOAD", "plugins could not be loaded");
  return entries;
}

/** Loads `<builtinDir>/<name>/index.js`. */
export function loadBuiltinPlugin(name: string, builtinDir: string): PluginModule {
  const file = join(resolve(builtinDir), name, "index.js");
  if (!existsSync(file)) {
    throw new PluginError(name, "STRATA_PLUGIN_NOT_FOUND", `there is no built-in plugin "${name}" (no ${file}); check the spelling of [plugins.${name}], or set plugins.${name}.package to the npm package that provides it`);
  }
  return pluginModuleOf(name, requireFile(name, file, file));
}

/** Loads an npm package, resolved from `packageDirs` in order. */
export function loadPackagePlugin(name: string, pkg: string, packageDirs: readonly string[]): PluginModule {
  const dirs = packageDirs.map((d) => resolve(d));
  let file: string;
  try {
    file = createRequire(join(dirs[0] ?? process.cwd(), "noop.js")).resolve(pkg, { paths: dirs });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND") {
      throw new PluginError(name, "STRATA_PLUGIN_NOT_FOUND", `npm package "${pkg}" (plugins.${name}.package) is not installed; run: cd ${dirs[0]} && npm i ${pkg}`, { cause: err });
    }
    throw new PluginError(name, "STRATA_PLUGIN_LOAD", `npm package "${pkg}" cannot be resolved: ${(err as Error).message}`, { cause: err });
  }
  return pluginModuleOf(name, requireFile(name, file, `npm package "${pkg}"`));
}

function requireFile(name: string, file: string, what: string): unknown {
  try {
    return createRequire(file)(file);
  } catch (err) {
    throw new PluginError(name, "STRATA_PLUGIN_LOAD", `${what} failed to load: ${(err as Error)?.message ?? String(err)}; a missing module inside it needs its own npm i`, { cause: err });
  }
}

/** A plugin module exports `default` or `plugin` (ESM `export default` arrives as `default` too). */
function pluginModuleOf(name: string, exports: unknown): PluginModule {
  const e = exports as { default?: unknown; plugin?: unknown } | undefined;
  const candidates = [e?.default, e?.plugin, (e?.default as { default?: unknown } | undefined)?.default];
  const mod = candidates.find((c): c is PluginModule => typeof c === "object" && c !== null && "manifest" in c && "register" in c);
  if (!mod) {
    throw new PluginError(name, "STRATA_PLUGIN_LOAD", "the module exports no plugin; export definePlugin({ manifest, register }) as `default` or as `plugin`");
  }
  return mod;
}
