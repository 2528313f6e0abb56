import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

// dist/test/unit/docs → the repository root.
const ROOT = join(__dirname, "..", "..", "..", "..");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith(".ts") && !p.endsWith(".d.ts") ? [p] : [];
  });
}

test("every STRATA_* error code in core/ and plugins/ has a row in docs/errors.md", () => {
  const doc = readFileSync(join(ROOT, "docs", "errors.md"), "utf8");
  const documented = new Set([...doc.matchAll(/^\| (STRATA_[A-Z0-9_]+) \|/gm)].map((m) => m[1]));
  const used = new Map<string, string>();
  for (const file of [...sources(join(ROOT, "core")), ...sources(join(ROOT, "plugins"))]) {
    for (const m of readFileSync(file, "utf8").matchAll(/["'`](STRATA_[A-Z0-9_]*[A-Z0-9])["'`]/g)) {
      if (!used.has(m[1]!)) used.set(m[1]!, file.slice(ROOT.length + 1));
    }
  }
  assert.ok(used.size > 20, "the scan found the codes");
  const missing = [...used].filter(([code]) => !documented.has(code)).map(([code, file]) => `${code} (${file})`);
  assert.deepEqual(missing, [], `add a row to docs/errors.md for: ${missing.join(", ")}`);
});
