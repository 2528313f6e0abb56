#!/usr/bin/env node
// The README's test command (`npm test`): build with tsc, make sure the Debian test peers are present
// (installing them when root, else telling the tests to skip with the install command), then run every
// test file on the compiled output with node's built-in runner.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const soak = process.argv.includes("--soak");
const only = process.argv.slice(2).filter((a) => !a.startsWith("--"));

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: root, ...opts });
  return r.status ?? 1;
}
function has(command) {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

// 1. Build (tests run on tsc's CommonJS output, the same decorator handling as production).
if (run(join(root, "node_modules/.bin/tsc"), ["-p", "."]) !== 0) process.exit(1);

// 2. Peers.
const peers = readFileSync(join(root, "test/peers.txt"), "utf8")
  .split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
  .map((l) => { const [pkg, command] = l.split(/\s+/); return { pkg, command }; });
let missing = peers.filter((p) => !has(p.command));
if (missing.length && process.getuid?.() === 0 && !process.env.STRATA_NO_APT) {
  console.log(`installing test peers: ${missing.map((p) => p.pkg).join(" ")}`);
  run("apt-get", ["update", "-q"], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  run("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...missing.map((p) => p.pkg)],
    { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  missing = peers.filter((p) => !has(p.command));
}
if (missing.length) {
  console.log(`skipping tests that need: ${missing.map((p) => p.pkg).join(" ")} ` +
    `(install with: sudo apt-get install -y ${missing.map((p) => p.pkg).join(" ")})`);
}

// 3. Test files.
const patterns = only.length ? only : [
  "dist/test/unit/**/*.test.js",
  "dist/test/integration/**/*.test.js",
  "dist/test/hierarchy/**/*.test.js",
];
const nodeBin = existsSync(join(root, "node_modules/.bin/node")) ? join(root, "node_modules/.bin/node") : process.execPath;
const env = { ...process.env, STRATA_MISSING_PEERS: missing.map((p) => p.pkg).join(","), ...(soak ? { STRATA_SOAK: "1" } : {}) };
process.exit(run(nodeBin, [
  "--test", "--test-concurrency=2", `--test-timeout=${soak ? 3_600_000 : 300_000}`, ...patterns,
], { env }));
