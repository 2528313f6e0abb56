import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const QUIET = join(__dirname, "../../../core/quiet-debug.js");

/** Runs `body` in a fresh node with quiet-debug loaded first and DEBUG as given; returns its stdout and stderr. */
function run(body: string, debugEnv?: string): { stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env.DEBUG;
  if (debugEnv !== undefined) env.DEBUG = debugEnv;
  const r = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(QUIET)}); ${body}`], { env, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return { stdout: r.stdout, stderr: r.stderr };
}

test("with DEBUG unset, a disabled logger prints nothing, and one enabled at run time prints with its namespace", () => {
  const { stdout, stderr } = run(`
    const createDebug = require("debug");
    const log = createDebug("strata:probe");
    log("before %s", "enable");
    console.log(JSON.stringify({ ns: log.namespace, enabled: Boolean(log.enabled), sub: log.extend("x").namespace, wrapped: Object.getPrototypeOf(log) !== Function.prototype }));
    createDebug.enable("strata:probe");
    log("after %s", "enable");
    console.log(JSON.stringify({ enabled: log.enabled }));
    log.enabled = false;
    log("overridden off");
  `);
  const [first, second] = stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(first, { ns: "strata:probe", enabled: false, sub: "strata:probe:x", wrapped: true });
  assert.deepEqual(second, { enabled: true });
  assert.doesNotMatch(stderr, /before enable/);
  assert.match(stderr, /strata:probe.*after enable/);
  assert.doesNotMatch(stderr, /overridden off/);
});

test("with DEBUG set, the debug package is left as it is and traces from the start", () => {
  const { stdout, stderr } = run(`
    const createDebug = require("debug");
    console.log(String(Object.getOwnPropertySymbols(createDebug).some((s) => String(s).includes("quiet-debug"))));
    createDebug("strata:probe")("traced %d", 42);
  `, "strata:*");
  assert.equal(stdout.trim(), "false");
  assert.match(stderr, /strata:probe.*traced 42/);
});

test("loading quiet-debug twice wraps a logger once", () => {
  const { stdout } = run(`
    require(${JSON.stringify(QUIET)});
    const createDebug = require("debug");
    const log = createDebug("strata:twice");
    console.log(String(Object.getPrototypeOf(Object.getPrototypeOf(log)) === Function.prototype));
  `);
  // The wrapper's prototype is the real logger, whose prototype is Function.prototype: one layer, not two.
  assert.equal(stdout.trim(), "true");
});
