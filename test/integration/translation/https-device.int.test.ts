import assert from "node:assert/strict";
import https from "node:https";
import { test } from "node:test";
import { Client, Message } from "azure-iot-device";
import { Http } from "azure-iot-device-http";
import {
  registerKitDevice, signSas, TelemetryRecorder, translationConformanceSuite, translationStats, TOKENS, type KitGateway,
} from "../../../core/index.js";
import plugin, { httpsDeviceConverter } from "../../../plugins/https-device/index.js";
import { startTestGateway } from "../../support/gateway.js";

/** One raw request to the gateway's HTTPS front. */
function request(k: { address: string; port: number; ca: string }, method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: k.address, port: k.port, method, path, headers, ca: k.ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

function sas(hub: string, deviceId: string, key: string): string {
  return signSas({ resource: `${hub}/devices/${deviceId}`, key, expirySecs: Math.floor(Date.now() / 1000) + 3600 });
}

async function kitPost(k: KitGateway, deviceId: string, body: string, headers: Record<string, string> = {}): Promise<number> {
  const key = await registerKitDevice(k, deviceId);
  const r = await request({ address: k.address, port: k.port("https"), ca: k.caPem }, "POST", `/devices/${deviceId}/messages/events?api-version=2020-09-30`,
    { authorization: sas(k.hubName, deviceId, key), "iothub-contenttype": "application/json", ...headers }, body);
  return r.status;
}

translationConformanceSuite(plugin, {
  converters: [httpsDeviceConverter],
  pluginKit: {
    invalidConfig: { lock_timeout_secs: 0 },
    provide(c) {
      c.register(TOKENS.Config, { useValue: { listen: { address: "127.0.0.1", https: 0 } } });
      c.register(TOKENS.Hub, { useValue: { attach: () => ({ changed() {}, detach() {} }) } });
      c.register(TOKENS.Identities, { useValue: { self: "gw", on: () => () => undefined } });
      c.register(TOKENS.HttpFront, { useValue: { register: () => undefined } });
    },
  },
  driver: {
    async sendValid(k, deviceId) {
      assert.equal(await kitPost(k, deviceId, '{"t":1}'), 204);
    },
    async sendMalformed(k) {
      assert.equal(await kitPost(k, "kit-bad", "[{nope", { "content-type": "application/vnd.microsoft.iothub.json" }), 400);
    },
  },
});

test("azure-iot-device-http, unmodified: telemetry arrives under the device's identity; C2D complete, reject and abandon", async (t) => {
  // The HTTP transport always uses port 443 on the connection string's HostName: its own loopback address.
  const address = "127.0.0.41";
  const tg = await startTestGateway({ address, hub: address, ports: { https: 443 }, extraPlugins: [{ module: plugin, settings: {} }] });
  const recorder = TelemetryRecorder.attach(tg.gw.hub, "test");
  t.after(async () => {
    recorder.stop();
    await tg.stop({ remove: true });
  });
  const { key } = await tg.addDevice("http-dev");
  const client = Client.fromConnectionString(`HostName=${address};DeviceId=http-dev;SharedAccessKey=${key}`, Http);
  await client.setOptions({ ca: tg.caPem, http: { receivePolicy: { interval: 1 } } } as never);
  await client.open();
  t.after(() => client.close());

  // 1. Telemetry, single and batch: 204 only once durable; the root sees the device's own identity.
  const m = new Message('{"temperature":20}');
  m.messageId = "m-1";
  m.contentType = "application/json";
  m.properties.add("alert", "yes");
  await client.sendEvent(m);
  const got = await recorder.waitFor((x) => x.systemProperties.messageId === "m-1");
  assert.equal(got.source, "http-dev");
  assert.equal(got.properties.alert, "yes");
  assert.equal(got.systemProperties.contentType, "application/json");
  assert.deepEqual(JSON.parse(got.body.toString()), { temperature: 20 });
  await client.sendEventBatch([new Message("b1"), new Message("b2")]);
  await recorder.waitFor((x) => x.source === "http-dev" && x.body.toString() === "b2");

  // 2. C2D: the SDK polls GET …/devicebound, then completes (DELETE), and the hub records the outcome.
  const received: Message[] = [];
  const next = () => new Promise<Message>((resolve) => client.once("message", (msg: Message) => { received.push(msg); resolve(msg); }));
  let arrival = next();
  await tg.gw.hub.sendC2D("http-dev", { body: Buffer.from("first"), properties: { k: "v" }, systemProperties: { messageId: "c-1", ack: "full" } });
  let c2d = await arrival;
  assert.equal(c2d.getData().toString(), "first");
  assert.equal(c2d.messageId, "c-1");
  assert.equal(c2d.properties.getValue("iothub-app-k") ?? c2d.properties.getValue("k"), "v");
  await client.complete(c2d);

  // 3. Abandon makes the hub deliver it again; reject ends it.
  arrival = next();
  await tg.gw.hub.sendC2D("http-dev", { body: Buffer.from("second"), properties: {}, systemProperties: { messageId: "c-2" } });
  c2d = await arrival;
  arrival = next();
  await client.abandon(c2d);
  c2d = await arrival;
  assert.equal(c2d.messageId, "c-2", "an abandoned message comes back");
  await client.reject(c2d);
  assert.equal(translationStats(tg.gw.hub, "https-device")?.ingested, 3);
});

test("https-device: a wrong key is 401, an unknown lock token 412, a malformed batch 400 and counted", async (t) => {
  const tg = await startTestGateway({ extraPlugins: [{ module: plugin, settings: {} }] });
  t.after(() => tg.stop({ remove: true }));
  const { key } = await tg.addDevice("d2");
  const k = { address: tg.address, port: tg.port("https"), ca: tg.caPem };
  const bad = await request(k, "POST", "/devices/d2/messages/events", { authorization: sas(tg.hubName, "d2", Buffer.alloc(32, 1).toString("base64")) }, "x");
  assert.equal(bad.status, 401);
  const good = { authorization: sas(tg.hubName, "d2", key) };
  assert.equal((await request(k, "DELETE", "/devices/d2/messages/deviceBound/nope", good)).status, 412);
  assert.equal((await request(k, "GET", "/devices/d2/messages/deviceBound", good)).status, 204);
  const malformed = await request(k, "POST", "/devices/d2/messages/events", { ...good, "content-type": "application/vnd.microsoft.iothub.json" }, "[1,2]");
  assert.equal(malformed.status, 400);
  assert.equal(translationStats(tg.gw.hub, "https-device")?.malformed, 1);
});
