import assert from "node:assert/strict";
import dgram from "node:dgram";
import { once } from "node:events";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { TelemetryRecorder, translationStats } from "../../../core/index.js";
import { startTestGateway } from "../../support/gateway.js";
import { installExamplePackage, PACKAGE } from "./third-party.js";

// 1. Install and build the package as a third party would; clean up at the end.
const installed = installExamplePackage();
after(() => rmSync(installed.home, { recursive: true, force: true }));

// 2. The package's own test file: the translation conformance kit, imported from `strata`.
require(join(installed.packageDir, "dist", "test", "conformance.test.js"));

test("the package is loaded by name from [plugins.json-udp] package = …, and works end to end", async (t) => {
  // Gateway.start resolves packages from the working directory (it passes no packageDirs): run it from the
  // folder whose node_modules holds the package, as `strata start` would be run from its install folder.
  const cwd = process.cwd();
  process.chdir(installed.home);
  let tg: Awaited<ReturnType<typeof startTestGateway>>;
  try {
    tg = await startTestGateway({ config: { plugins: { "json-udp": { package: PACKAGE, port: 0 } } } });
  } finally {
    process.chdir(cwd);
  }
  const recorder = TelemetryRecorder.attach(tg.gw.hub, "test");
  t.after(async () => {
    recorder.stop();
    await tg.stop({ remove: true });
  });
  assert.ok(tg.gw.report.started.includes("json-udp"));
  const resolved = require.resolve(PACKAGE, { paths: [installed.home] });
  assert.ok(resolved.startsWith(installed.packageDir), `loaded from ${resolved}`);

  // 3. A device's datagram is acknowledged once durable and reaches the root under the gateway's identity.
  const device = dgram.createSocket("udp4");
  t.after(() => device.close());
  const port = tg.port("json-udp");
  device.send('{"id":"pump-9","rpm":1450}', port, "127.0.0.1");
  const [ack] = (await once(device, "message")) as [Buffer];
  assert.equal(ack.toString(), "ok");
  const m = await recorder.waitFor((x) => x.properties.deviceId === "pump-9");
  assert.equal(m.source, tg.gw.config.device_id);
  assert.deepEqual(JSON.parse(m.body.toString()), { rpm: 1450 });
  // The package's Translator is core's own (one copy of strata): its counters are visible from here.
  assert.equal(translationStats(tg.gw.hub, "json-udp")?.ingested, 1);

  // 4. A method on the gateway reaches the device as a datagram; its answer comes back.
  const call = tg.gw.hub.invokeMethod(tg.gw.config.device_id, { methodName: "slow", payload: { deviceId: "pump-9", payload: { rpm: 900 } }, responseTimeoutInSeconds: 10 });
  const [req] = (await once(device, "message")) as [Buffer];
  const cmd = JSON.parse(req.toString()) as { rid: number; method: string; payload: unknown };
  assert.equal(cmd.method, "slow");
  assert.deepEqual(cmd.payload, { rpm: 900 });
  device.send(JSON.stringify({ rid: cmd.rid, status: 200, payload: { rpm: 900 } }), port, "127.0.0.1");
  assert.deepEqual(await call, { status: 200, payload: { rpm: 900 } });

  // 5. Malformed input is refused and counted by core.
  device.send("{nope", port, "127.0.0.1");
  const [refusal] = (await once(device, "message")) as [Buffer];
  assert.match(refusal.toString(), /^error STRATA_TRANSLATION_MALFORMED/);
  assert.equal(translationStats(tg.gw.hub, "json-udp")?.malformed, 1);
});
