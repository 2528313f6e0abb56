// The root's service REST API driven by the real azure-iothub SDK (Registry, Twin, Client.invokeDeviceMethod)
// over HTTPS on port 443 of the gateway's own loopback address, as the SDK insists on; and the telemetry log
// fed through the hub's $upstream → sink:telemetryLog, read back with `strata telemetry tail --json --limit`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { stringify as stringifyToml } from "smol-toml";
import { PassThrough } from "node:stream";
import { Amqp, Client, Registry } from "azure-iothub";
import { RestApiClient } from "azure-iothub/dist/common-http/rest_api_client";
import { SharedAccessSignature } from "azure-iothub/dist/common-core/shared_access_signature";
import type { DeviceLink, InboundMessage, MethodRequest } from "../../../core/index.js";
import { follow, readLast, rootDataDir, telemetryTailCommand } from "../../../plugins/root/index.js";
import { telemetryLogDir } from "../../../plugins/root/telemetry/segments.js";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";

/** A loopback address of its own: the service SDK always connects to port 443 of its HostName. */
const ADDRESS = "127.0.0.47";
const skip = process.getuid?.() === 0 ? false : "needs root to bind port 443 (CI runs as root)";

/**
 * The SDK's REST client takes a CA through setOptions({ca}); Registry and Client overwrite the options with
 * their own keep-alive agent in their constructors, so the CA is set again after constructing them.
 */
function serviceSdk(gw: TestGateway, key = gw.ownerKey) {
  const host = gw.hubName;
  const sas = SharedAccessSignature.create(host, "iothubowner", key, Math.floor(Date.now() / 1000) + 3600).toString();
  const config = { host, sharedAccessSignature: sas, sharedAccessSignatureName: "iothubowner" } as unknown as Registry.TransportConfig;
  const trust = () => ({ ca: gw.caPem, http: { agent: new https.Agent({ ca: gw.caPem, keepAlive: false }) } });
  const registryRest = new RestApiClient(config as never, "strata-test");
  const registry = new Registry(config, registryRest);
  registryRest.setOptions(trust());
  const clientRest = new RestApiClient(config as never, "strata-test");
  const client = new Client(new Amqp(config as never), clientRest);
  clientRest.setOptions(trust());
  return { registry, client };
}

/** A DeviceLink with no protocol behind it, attached through the hub: stands in for a connected device. */
function fakeDeviceLink(id: string, answer: (req: MethodRequest) => Promise<{ status: number; payload: unknown }>): DeviceLink {
  return {
    principal: { id, deviceId: id, method: "sas" },
    head: "fake-test-link",
    accepts: (kind) => kind === "methods",
    deliverC2D: async () => "completed",
    deliverInput: async () => undefined,
    desiredPatch: () => undefined,
    invokeMethod: (req) => answer(req),
    close: () => undefined,
  };
}

async function rootGateway(t: { after(fn: () => Promise<void>): void }, config: Record<string, unknown> = {}): Promise<TestGateway> {
  const gw = await startTestGateway({ plugins: ["root"], address: ADDRESS, hub: ADDRESS, ports: { https: 443 }, config });
  t.after(() => gw.stop({ remove: true }));
  return gw;
}

test("azure-iothub Registry create/get/update/delete, Twin update and invokeDeviceMethod against the root", { skip }, async (t) => {
  const gw = await rootGateway(t);
  const { registry, client } = serviceSdk(gw);

  // 1. Registry.create with no keys: the root generates them.
  const created = (await registry.create({ deviceId: "sdk-dev-1" })).responseBody;
  assert.equal(created.deviceId, "sdk-dev-1");
  assert.ok(created.authentication?.symmetricKey?.primaryKey, "a key was generated");
  assert.ok(gw.gw.identities.get("sdk-dev-1"), "the identity is registered in core");
  const got = (await registry.get("sdk-dev-1")).responseBody;
  assert.equal(got.etag, created.etag);
  await assert.rejects(registry.create({ deviceId: "sdk-dev-1" }), { name: "DeviceAlreadyExistsError" });

  // 2. Registry.update (If-Match "*").
  const updated = (await registry.update({ ...got, status: "disabled" })).responseBody;
  assert.equal(updated.status, "disabled");
  assert.equal(gw.gw.identities.get("sdk-dev-1")?.status, "disabled");

  // 3. Twin update of desired properties (If-Match: the twin's etag).
  const twin = (await registry.getTwin("sdk-dev-1")).responseBody;
  const afterPatch = (await twin.update({ tags: { line: "3" }, properties: { desired: { interval: 10 } } })).result;
  assert.equal(afterPatch.properties.desired["interval"], 10);
  assert.equal((await gw.gw.hub.getTwin("sdk-dev-1")).properties.desired["interval"], 10);
  assert.deepEqual((await gw.gw.hub.getTwin("sdk-dev-1")).tags, { line: "3" });

  // 4. invokeDeviceMethod: 404 while the device is offline, the device's answer once a (fake) link is attached.
  await assert.rejects(client.invokeDeviceMethod("sdk-dev-1", { methodName: "reboot", payload: null, responseTimeoutInSeconds: 5 }),
    // The SDK turns any 404 but DeviceNotFound into a plain "Not found" (as with IoT Hub); the body says why.
    (err: Error & { response?: { statusCode: number }; responseBody?: string }) =>
      err.response?.statusCode === 404 && /ErrorCode:DeviceNotOnline/.test(err.responseBody ?? ""));
  const attachment = gw.gw.hub.attach(fakeDeviceLink("sdk-dev-1", async (req) => ({ status: 200, payload: { got: req.payload } })));
  t.after(async () => attachment.detach());
  const result = await client.invokeDeviceMethod("sdk-dev-1", { methodName: "reboot", payload: { in: 5 }, responseTimeoutInSeconds: 5 });
  assert.deepEqual(result.result, { status: 200, payload: { got: { in: 5 } } });

  // 5. Registry.delete, then get is DeviceNotFound.
  await registry.delete("sdk-dev-1");
  await assert.rejects(registry.get("sdk-dev-1"), { name: "DeviceNotFoundError" });
});

test("the SDK with a wrong owner key is refused (UnauthorizedError)", { skip }, async (t) => {
  const gw = await rootGateway(t);
  const { registry } = serviceSdk(gw, Buffer.alloc(32, 7).toString("base64"));
  await assert.rejects(registry.list(), { name: "UnauthorizedError" });
});

test("telemetry reaches the root's log through $upstream; telemetry tail --json --limit prints it", { skip }, async (t) => {
  const gw = await rootGateway(t, { plugins: { root: { telemetry_log: { segment_bytes: 8192 } } } });
  await gw.addDevice("tele-1");
  const principal = { id: "tele-1", deviceId: "tele-1", method: "sas" as const };
  const dir = telemetryLogDir(rootDataDir(gw.gw.config));
  const start = await readLast(dir);
  const N = 300;
  // 1. Wait on the log itself (follow), not on time.
  const abort = new AbortController();
  let seen = 0;
  const allLogged = new Promise<void>((resolve) => {
    void follow(dir, start.position, () => {
      if (++seen === N) resolve();
    }, abort.signal, 100);
  });
  for (let i = 0; i < N; i++) {
    const m: InboundMessage = {
      body: i === N - 1 ? Buffer.from([0xff, 0x00, 0xfe]) : Buffer.from(JSON.stringify({ i })),
      properties: { seq: String(i) },
      systemProperties: { messageId: `m-${i}`, contentType: "application/json" },
    };
    await gw.gw.hub.ingest(principal, m);
  }
  await allLogged;
  abort.abort();

  // 2. The command, reading the files while the gateway runs.
  const stdout = new PassThrough();
  let out = "";
  stdout.on("data", (c: Buffer) => (out += c.toString()));
  const code = await telemetryTailCommand.run(["--json", "--limit", "3"], {
    config: gw.gw.config, dataDir: rootDataDir(gw.gw.config), stdout, stderr: new PassThrough(), signal: new AbortController().signal,
  });
  assert.equal(code, 0);
  const lines = out.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 3);
  assert.deepEqual(lines.map((l) => l.messageId), [`m-${N - 3}`, `m-${N - 2}`, `m-${N - 1}`]);
  assert.equal(lines[0].deviceId, "tele-1");
  assert.equal(lines[0].moduleId, null);
  assert.deepEqual(lines[0].properties, { seq: String(N - 3) });
  assert.equal(lines[0].body, JSON.stringify({ i: N - 3 }));
  assert.ok(!Number.isNaN(Date.parse(lines[0].enqueuedTime)));
  assert.equal(lines[2].bodyEncoding, "base64");
  assert.equal(lines[2].body, Buffer.from([0xff, 0x00, 0xfe]).toString("base64"));
  const all = await readLast(dir);
  assert.equal(all.lines.length, N, "each message logged once");
});

test("strata telemetry tail --json --limit, as a separate process, reads the log while the gateway runs", { skip }, async (t) => {
  const gw = await rootGateway(t);
  await gw.addDevice("cli-1");
  const principal = { id: "cli-1", deviceId: "cli-1", method: "sas" as const };
  const dir = telemetryLogDir(rootDataDir(gw.gw.config));
  const abort = new AbortController();
  let seen = 0;
  const logged = new Promise<void>((resolve) => {
    void follow(dir, { segment: 0, offset: 0 }, () => {
      if (++seen === 5) resolve();
    }, abort.signal, 100);
  });
  for (let i = 0; i < 5; i++) {
    await gw.gw.hub.ingest(principal, { body: Buffer.from(`m${i}`), properties: {}, systemProperties: { messageId: `cli-${i}` } });
  }
  await logged;
  abort.abort();
  // The gateway's config as a TOML file for the CLI's --config.
  const configFile = join(gw.dir, "strata.toml");
  writeFileSync(configFile, stringifyToml(JSON.parse(JSON.stringify(gw.gw.config)) as Record<string, unknown>));
  const cli = join(__dirname, "..", "..", "..", "core", "cli", "main.js");
  const run = spawnSync(process.execPath, [cli, "telemetry", "tail", "--json", "--limit", "2", "--config", configFile], { encoding: "utf8", timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => [l.deviceId, l.messageId, l.body]), [["cli-1", "cli-3", "m3"], ["cli-1", "cli-4", "m4"]]);
});
