import assert from "node:assert/strict";
import dgram from "node:dgram";
import { once } from "node:events";
import { test } from "node:test";
import { TelemetryRecorder, translationConformanceSuite, translationStats, TOKENS, Listeners, type KitGateway } from "../../../core/index.js";
import plugin, { lineConverters, TCP_LISTENER, UDP_LISTENER } from "../../../plugins/line-protocol/index.js";
import { startTestGateway } from "../../support/gateway.js";
import { LineDevice } from "./line-client.js";

const settings = { tcp_port: 0, udp_port: 0, ack: true, csv_columns: ["temperature", "humidity"] };

translationConformanceSuite(plugin, {
  converters: lineConverters("deviceId", ["temperature", "humidity"]),
  settings,
  pluginKit: {
    config: { tcp_port: 0, udp_port: 0 },
    invalidConfig: { tcp_port: 70000 },
    provide(c) {
      c.register(TOKENS.Config, { useValue: { listen: { address: "127.0.0.1", mqtt: 0, amqp: 0, https: 0 } } });
      c.register(TOKENS.Hub, { useValue: { attach: () => ({ changed() {}, detach() {} }) } });
      c.register(TOKENS.Identities, { useValue: { self: "gw", on: () => () => undefined } });
      c.register(TOKENS.Listeners, { useValue: new Listeners() });
    },
  },
  driver: {
    async sendValid(k: KitGateway, deviceId) {
      const d = await LineDevice.connect(k.port(TCP_LISTENER));
      try {
        assert.equal(await d.send(JSON.stringify({ deviceId, temperature: 20 })), "ok");
      } finally {
        d.close();
      }
    },
    async sendMalformed(k) {
      const d = await LineDevice.connect(k.port(TCP_LISTENER));
      try {
        assert.match(await d.send("{broken json"), /^error STRATA_TRANSLATION_MALFORMED/);
      } finally {
        d.close();
      }
    },
    async openConnection(k) {
      const d = await LineDevice.connect(k.port(TCP_LISTENER));
      await d.send(JSON.stringify({ deviceId: "kit-open", temperature: 1 }));
      return { closed: d.closed };
    },
  },
});

async function lineGateway(t: import("node:test").TestContext, extra: Record<string, unknown> = {}) {
  const tg = await startTestGateway({ extraPlugins: [{ module: plugin, settings: { ...settings, ...extra } }] });
  const recorder = TelemetryRecorder.attach(tg.gw.hub, "test");
  t.after(async () => {
    recorder.stop();
    await tg.stop({ remove: true });
  });
  return { tg, recorder, tcp: tg.port(TCP_LISTENER), udp: tg.port(UDP_LISTENER) };
}

test("protocol mode: JSON and CSV lines arrive under the gateway's identity with a deviceId property", async (t) => {
  const { tg, recorder, tcp } = await lineGateway(t);
  const d = await LineDevice.connect(tcp);
  t.after(() => d.close());
  assert.equal(await d.send('{"deviceId":"mcu-1","temperature":21.5}'), "ok");
  assert.equal(await d.send("mcu-2,19,40"), "ok");
  const a = await recorder.waitFor((m) => m.properties.deviceId === "mcu-1");
  const b = await recorder.waitFor((m) => m.properties.deviceId === "mcu-2");
  assert.equal(a.source, tg.gw.config.device_id);
  assert.deepEqual(JSON.parse(a.body.toString()), { temperature: 21.5 });
  assert.equal(a.systemProperties.contentType, "application/json");
  assert.deepEqual(JSON.parse(b.body.toString()), { temperature: 19, humidity: 40 });
  assert.equal(tg.gw.identities.get("mcu-1"), undefined, "protocol mode creates no identities");
});

test("protocol mode: malformed lines are refused and counted; the next line and other devices still arrive", async (t) => {
  const { tg, recorder, tcp } = await lineGateway(t);
  const d = await LineDevice.connect(tcp);
  t.after(() => d.close());
  assert.match(await d.send("{nope"), /^error STRATA_TRANSLATION_MALFORMED/);
  assert.match(await d.send("mcu-3,1,2,3"), /^error STRATA_TRANSLATION_MALFORMED/);
  assert.equal(await d.send('{"deviceId":"mcu-3","t":1}'), "ok");
  await recorder.waitFor((m) => m.properties.deviceId === "mcu-3");
  assert.equal(translationStats(tg.gw.hub, "line-protocol")?.malformed, 2);
});

test("protocol mode: a method on the gateway reaches the device and its answer comes back; desired too", async (t) => {
  const { tg, tcp } = await lineGateway(t);
  const d = await LineDevice.connect(tcp);
  t.after(() => d.close());
  await d.send('{"deviceId":"mcu-4","t":1}');
  const self = tg.gw.config.device_id;
  // 1. The method request arrives as a JSON line with a rid; the device answers with that rid.
  const call = tg.gw.hub.invokeMethod(self, { methodName: "blink", payload: { deviceId: "mcu-4", payload: { times: 3 } }, responseTimeoutInSeconds: 10 });
  const req = JSON.parse(await d.next((l) => l.includes('"method"'))) as { rid: number; method: string; payload: unknown };
  assert.equal(req.method, "blink");
  assert.deepEqual(req.payload, { times: 3 });
  d.socket.write(JSON.stringify({ rid: req.rid, status: 200, payload: { blinked: 3 } }) + "\n");
  assert.deepEqual(await call, { status: 200, payload: { blinked: 3 } });
  // 2. An unknown device answers 404 from the gateway.
  const missing = await tg.gw.hub.invokeMethod(self, { methodName: "blink", payload: { deviceId: "nobody" }, responseTimeoutInSeconds: 5 });
  assert.equal(missing.status, 404);
  // 3. Desired properties for the device, under `devices.<id>` of the gateway's twin.
  await tg.gw.hub.patchDesired(self, { devices: { "mcu-4": { interval: 5 } } });
  assert.deepEqual(JSON.parse(await d.next((l) => l.includes("desired"))), { desired: { interval: 5 } });
});

test("protocol mode: UDP datagrams arrive and are acknowledged", async (t) => {
  const { recorder, udp } = await lineGateway(t);
  const sock = dgram.createSocket("udp4");
  t.after(() => sock.close());
  sock.send('{"deviceId":"udp-1","v":1}\n{"deviceId":"udp-2","v":2}\n', udp, "127.0.0.1");
  const [first] = await once(sock, "message") as [Buffer];
  assert.equal(first.toString().trim(), "ok");
  await recorder.waitFor((m) => m.properties.deviceId === "udp-1");
  await recorder.waitFor((m) => m.properties.deviceId === "udp-2");
});

test("identity mode: each device gets its own identity, twin and methods", async (t) => {
  const { tg, recorder, tcp } = await lineGateway(t, { mode: "identity" });
  const d = await LineDevice.connect(tcp);
  t.after(() => d.close());
  assert.equal(await d.send('{"deviceId":"plc-7","pressure":3.2}'), "ok");
  const m = await recorder.waitFor((x) => x.source === "plc-7");
  assert.equal(m.systemProperties.connectionDeviceId, "plc-7");
  assert.equal(m.properties.deviceId, undefined, "identity mode does not tag messages");
  const record = tg.gw.identities.get("plc-7");
  assert.equal(record?.status, "enabled");
  assert.ok(tg.gw.hub.isConnected("plc-7"));
  // A method addressed to the device's own identity.
  const call = tg.gw.hub.invokeMethod("plc-7", { methodName: "reset", payload: null, responseTimeoutInSeconds: 10 });
  const req = JSON.parse(await d.next((l) => l.includes('"method"'))) as { rid: number };
  d.socket.write(JSON.stringify({ rid: req.rid, status: 409, payload: "busy" }) + "\n");
  assert.deepEqual(await call, { status: 409, payload: "busy" });
  // A desired patch on the device's twin reaches it, and the applied value is reported back.
  await tg.gw.hub.patchDesired("plc-7", { setpoint: 4 });
  assert.deepEqual(JSON.parse(await d.next((l) => l.includes("desired"))), { desired: { setpoint: 4 } });
  // C2D: queued durably, delivered as a line, completed.
  await tg.gw.hub.sendC2D("plc-7", { body: Buffer.from("stop"), properties: { why: "test" }, systemProperties: {} });
  assert.deepEqual(JSON.parse(await d.next((l) => l.includes("c2d"))), { c2d: "stop", properties: { why: "test" } });
});

test("identity mode without auto_create: an unregistered device is refused, a registered one is taken", async (t) => {
  const { tg, recorder, tcp } = await lineGateway(t, { mode: "identity", auto_create: false });
  const d = await LineDevice.connect(tcp);
  t.after(() => d.close());
  assert.equal(await d.send('{"deviceId":"stranger","v":1}'), "error STRATA_TRANSLATION_UNKNOWN_DEVICE");
  await tg.addDevice("known");
  assert.equal(await d.send('{"deviceId":"known","v":1}'), "ok");
  await recorder.waitFor((m) => m.source === "known");
  assert.equal(tg.gw.identities.get("stranger"), undefined);
});
