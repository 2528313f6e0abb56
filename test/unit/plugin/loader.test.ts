import "reflect-metadata";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isStrataError, StrataAggregateError, type StrataError } from "../../../core/errors.js";
import { loadPluginEntries } from "../../../core/plugin/loader.js";

/** A plugin module as plain CommonJS, the shape tsc emits for plugins/<name>/index.ts or a package ships. */
function pluginSource(name: string, exportAs: "default" | "plugin" = "default"): string {
  return `
const { z } = require(${JSON.stringify(require.resolve("zod"))});
exports.${exportAs} = {
  manifest: { name: ${JSON.stringify(name)}, apiVersion: "^1", configSchema: z.object({ port: z.number().default(1) }) },
  register(scope) {},
};`;
}

function sandbox(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), "strata-loader-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const builtinDir = join(dir, "dist", "plugins");
  mkdirSync(join(builtinDir, "alpha"), { recursive: true });
  writeFileSync(join(builtinDir, "alpha", "index.js"), pluginSource("alpha"));
  const pkgDir = join(dir, "site", "node_modules", "strata-plugin-beta");
  mkdirSync(pkgDir, { recursive: true });
  writeFileSync(join(pkgDir, "package.json"), JSON.stringify({ name: "strata-plugin-beta", main: "lib/main.js", peerDependencies: { strata: "*", tsyringe: "^4" } }));
  mkdirSync(join(pkgDir, "lib"));
  writeFileSync(join(pkgDir, "lib", "main.js"), pluginSource("beta", "plugin"));
  return { dir, builtinDir, packageDirs: [join(dir, "site")] };
}

test("loads built-in and npm plugins, strips the reserved keys and carries them over", (t) => {
  const s = sandbox(t);
  const entries = loadPluginEntries({
    alpha: { port: 5, log_level: "debug" },
    beta: { package: "strata-plugin-beta", essential: true },
    gamma: { enabled: false, package: "not-installed-anywhere" },
  }, s);
  assert.deepEqual(entries.map((e) => e.module.manifest.name), ["alpha", "beta"]);
  assert.deepEqual(entries[0]!.settings, { port: 5 });
  assert.equal(entries[0]!.logLevel, "debug");
  assert.deepEqual(entries[1]!.settings, {});
  assert.equal(entries[1]!.essential, true);
});

test("default built-ins load without a section unless disabled", (t) => {
  const s = sandbox(t);
  assert.deepEqual(loadPluginEntries({}, { ...s, defaults: ["alpha"] }).map((e) => e.module.manifest.name), ["alpha"]);
  assert.deepEqual(loadPluginEntries({ alpha: { enabled: false } }, { ...s, defaults: ["alpha"] }), []);
});

test("a missing npm package is an error naming the package and npm i", (t) => {
  const s = sandbox(t);
  assert.throws(() => loadPluginEntries({ modbus: { package: "strata-plugin-modbus" } }, s), (e: unknown) =>
    isStrataError(e, "STRATA_PLUGIN_NOT_FOUND") && /"strata-plugin-modbus".*npm i strata-plugin-modbus/.test((e as Error).message));
});

test("unknown built-ins, bad reserved keys and name mismatches are reported together", (t) => {
  const s = sandbox(t);
  assert.throws(() => loadPluginEntries({
    alhpa: {},
    alpha: { essential: "yes" },
    other: { package: "strata-plugin-beta" },
  }, s), (e: unknown) => {
    assert.ok(e instanceof StrataAggregateError && e.code === "STRATA_PLUGIN_LOAD");
    assert.deepEqual(e.errors.map((x) => (x as StrataError).code), ["STRATA_PLUGIN_NOT_FOUND", "STRATA_PLUGIN_CONFIG", "STRATA_PLUGIN_LOAD"]);
    assert.match(e.message, /no built-in plugin "alhpa"/);
    assert.match(e.message, /plugins\.alpha\.essential must be true or false/);
    assert.match(e.message, /names itself "beta"/);
    return true;
  });
});

test("a module that exports no plugin is refused with the export it needs", (t) => {
  const s = sandbox(t);
  mkdirSync(join(s.builtinDir, "empty"));
  writeFileSync(join(s.builtinDir, "empty", "index.js"), "exports.something = 1;");
  assert.throws(() => loadPluginEntries({ empty: {} }, s), (e: unknown) =>
    isStrataError(e, "STRATA_PLUGIN_LOAD") && /as `default` or as `plugin`/.test((e as Error).message));
});
