import "reflect-metadata";
import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { checkPluginConformance, CONFORMANCE_CHECKS, type ConformanceReport } from "../../../core/plugin/conformance.js";
import { goodPlugin, leakedServers, leakyPlugin, missingInjectPlugin } from "./conformance-fixtures.js";

const failed = (r: ConformanceReport) => r.checks.filter((c) => !c.ok).map((c) => c.name);
const check = (r: ConformanceReport, name: string) => r.checks.find((c) => c.name === name)!;

test("a well-behaved plugin passes every check", async () => {
  const r = await checkPluginConformance(goodPlugin, { invalidConfig: { port: 70000 } });
  assert.deepEqual(failed(r), [], r.checks.map((c) => c.error?.message).filter(Boolean).join("\n"));
  assert.equal(r.ok, true);
  assert.deepEqual(r.checks.map((c) => c.name), CONFORMANCE_CHECKS);
});

test("the kit catches a constructor parameter without @inject, naming it", async () => {
  const r = await checkPluginConformance(missingInjectPlugin);
  assert.equal(r.ok, false);
  // The checks that construct the plugin fail too (tsc resolves the bare parameter by its type, Object);
  // the @inject check is the one that says why.
  assert.match(check(r, "every constructor parameter has an explicit @inject").error!.message, /plugin forgetful: constructor parameter #2 of ForgetfulPlugin has no @inject/);
});

test("the kit catches a plugin that leaks a listening socket", async (t) => {
  t.after(() => { for (const s of leakedServers) s.close(); });
  const r = await checkPluginConformance(leakyPlugin);
  assert.equal(r.ok, false);
  const leak = check(r, "start then stop (twice) leaves no new active handles");
  assert.equal(leak.ok, false);
  assert.match(leak.error!.message, /TCPServerWrap ×2/);
  assert.equal(check(r, "every constructor parameter has an explicit @inject").ok, true);
});

test("the kit catches an invalid config accepted, or an error that does not name the key", async () => {
  // A schema that accepts anything for `port` lets the sample through.
  const lax = { ...goodPlugin, manifest: { ...goodPlugin.manifest, configSchema: z.object({ port: z.unknown().default(0), address: z.string().default("127.0.0.1") }) } };
  const r = await checkPluginConformance(lax, { invalidConfig: { port: "not a port" } });
  assert.match(check(r, "an invalid config is refused with an error naming the key").error!.message, /was accepted/);
});

test("the kit catches a schema whose defaults alone are not a valid config", async () => {
  const strict = { ...goodPlugin, manifest: { ...goodPlugin.manifest, configSchema: z.object({ port: z.int() }) } };
  const r = await checkPluginConformance(strict);
  assert.match(check(r, "manifest is well formed and defaults alone make a valid config").error!.message, /plugins\.echo\.port: is required/);
});
