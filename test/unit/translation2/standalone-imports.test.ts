// A third-party plugin keeps working when core's internals change only if it imports nothing but core's
// public face. This scans the standalone example's sources and its package.json.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";

/** The repository (this file runs from <repo>/<dist>/test/unit/translation2). */
const REPO = join(__dirname, "..", "..", "..", "..");
const PACKAGE_DIR = join(REPO, "examples", "strata-plugin-json-udp");

/** Module specifiers in TypeScript source: `from "x"`, `import "x"`, `import("x")`, `require("x")`. */
export function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [/\bfrom\s*["']([^"']+)["']/g, /\bimport\s*["']([^"']+)["']/g, /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g, /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g];
  for (const re of patterns) for (const m of source.matchAll(re)) found.push(m[1]!);
  return found;
}

/** What is wrong with one import of a file of the package (undefined: allowed). */
export function forbidden(spec: string, file: string, packageDir: string): string | undefined {
  if (spec === "strata" || spec === "zod" || spec.startsWith("node:")) return undefined;
  if (spec.startsWith(".")) {
    const target = resolve(dirname(file), spec);
    const inside = relative(packageDir, target);
    return inside.startsWith("..") ? `${spec} reaches outside the package (core's internals are not an API; import from "strata")` : undefined;
  }
  if (spec.startsWith("strata/")) return `${spec} is a deep import of core; import from "strata" (core's public face) only`;
  return `${spec} is not an allowed import (strata, zod, node:*, or the package's own files)`;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" || e.name === "dist" ? [] : sources(p);
    return /\.(ts|js|mts|cts)$/.test(e.name) ? [p] : [];
  });
}

test("the standalone example imports nothing from core but its public face (`strata`)", () => {
  const files = sources(PACKAGE_DIR);
  assert.ok(files.length >= 4, `found the package's sources in ${PACKAGE_DIR}`);
  const problems: string[] = [];
  let strataImports = 0;
  for (const file of files) {
    for (const spec of specifiers(readFileSync(file, "utf8"))) {
      if (spec === "strata") strataImports++;
      const why = forbidden(spec, file, PACKAGE_DIR);
      if (why) problems.push(`${relative(PACKAGE_DIR, file)}: ${why}`);
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(strataImports >= 3, "the package uses core through `strata`");
});

test("the standalone example takes strata and tsyringe as peers and bundles neither", () => {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_DIR, "package.json"), "utf8")) as Record<string, Record<string, string> | undefined>;
  assert.ok(pkg.peerDependencies?.strata, "strata is a peer dependency");
  assert.ok(pkg.peerDependencies?.tsyringe, "tsyringe is a peer dependency");
  for (const dep of ["strata", "tsyringe"]) {
    assert.equal(pkg.dependencies?.[dep], undefined, `${dep} must not be a dependency (one copy: core's)`);
    assert.equal(pkg.devDependencies?.[dep], undefined, `${dep} must not be a dev dependency copy either`);
  }
});

test("the scan catches internal imports (it can fail)", () => {
  const file = join(PACKAGE_DIR, "src", "bad.ts");
  const src = 'import { CoreHub } from "../../../core/hub/hub.js";\nimport x from "strata/dist/core/hub/hub.js";\nconst y = require("tsyringe");\nimport("./ok.js");';
  const problems = specifiers(src).map((s) => forbidden(s, file, PACKAGE_DIR)).filter((p) => p !== undefined);
  assert.equal(problems.length, 3);
  assert.match(problems[0]!, /outside the package/);
  assert.match(problems[1]!, /deep import/);
  assert.match(problems[2]!, /tsyringe is not an allowed import/);
});
