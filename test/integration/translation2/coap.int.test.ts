import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { Listeners, TelemetryRecorder, TOKENS, translationConformanceSuite, translationStats, type KitGateway } from "../../../core/index.js";
import plugin, { COAP_LISTENER, coapConverters } from "../../../plugins/coap/index.js";
import { startTestGateway } from "../../support/gateway.js";
import { coapRequest, CoapObserver, SKIP_WITHOUT_PEER } from "./coap-peer.js";

if (SKIP_WITHOUT_PEER) {
  test("coap conformance and integration", { skip: SKIP_WITHOUT_PEER }, () => undefined);
} else {
  translationConformanceSuite(plugin, {
    converters: coapConverters,
    settings: { port: 0 },
    pluginKit: {
      config: { port: 0 },
      invalidConfig: { port: 70000 },
      provide(c) {
        c.register(TOKENS.Config, { useValue: { listen: { address: "127.0.0.1", mqtt: 0, amqp: 0, https: 0 } } });
        c.register(TOKENS.Hub, { useValue: { attach: () => ({ changed() {}, detach() {} }) } });
        c.register(TOKENS.Identities, { useValue: { self: "gw", on: () => () => undefined } });
        c.register(TOKENS.Listeners, { useValue: new Listeners() });
      },
    },
    driver: {
      async sendValid(k: KitGateway, deviceId) {
        const r = await coapRequest(k.port(COAP_LISTENER), `/telemetry/${deviceId}`, { method: "post", format: "json", payload: '{"temperature":20}' });
        assert.equal(r.err, "");
      },
      async sendMalformed(k) {
        const r = await coapRequest(k.port(COAP_LISTENER), "/telemetry/kit-bad", { method: "post", format: "json", payload: "{broken" });
        assert.match(r.err, /^4\.00 STRATA_TRANSLATION_MALFORMED/);
      },
      async openConnection(k) {
        // CoAP is connectionless; an observation of the command resource is what a device keeps open.
        const obs = CoapObserver.start(k.port(COAP_LISTENER), "/commands/kit-open");
        await obs.next((l) => l === "[]");
        // libcoap keeps running for its -s duration after the gateway ended the observation (a 5.03
        // notification, RFC 7641 §4.2); the device process is ours to end once it saw that.
        return { closed: obs.ended.then(() => obs.stop()).then(() => undefined) };
      },
    },
  });

  test("protocol mode: JSON and SenML from coap-client arrive under the gateway's identity, tagged with deviceId", async (t) => {
    const { tg, recorder, port } = await coapGateway(t);
    const a = await coapRequest(port, "/telemetry/sensor-1?kind=climate", { method: "post", format: "json", payload: '{"temperature":21.5}' });
    assert.deepEqual(a, { out: "", err: "" });
    const b = await coapRequest(port, "/telemetry/sensor-2", { method: "post", format: "110", payload: '[{"bn":"env/","n":"hum","v":40},{"n":"door","vb":true}]' });
    assert.equal(b.err, "");
    const m1 = await recorder.waitFor((m) => m.properties.deviceId === "sensor-1");
    const m2 = await recorder.waitFor((m) => m.properties.deviceId === "sensor-2");
    assert.equal(m1.source, tg.gw.config.device_id);
    assert.equal(m1.properties.kind, "climate");
    assert.deepEqual(JSON.parse(m1.body.toString()), { temperature: 21.5 });
    assert.equal(m1.systemProperties.contentType, "application/json");
    assert.deepEqual(JSON.parse(m2.body.toString()), { "env/hum": 40, "env/door": true });
    assert.equal(tg.gw.identities.get("sensor-1"), undefined, "protocol mode creates no identities");
  });

  test("malformed input is refused with a CoAP error and counted; the next request still arrives", async (t) => {
    const { tg, recorder, port } = await coapGateway(t);
    assert.match((await coapRequest(port, "/telemetry/s3", { method: "post", format: "json", payload: "{nope" })).err, /^4\.00 STRATA_TRANSLATION_MALFORMED/);
    assert.match((await coapRequest(port, "/telemetry/s3", { method: "post", format: "110", payload: '[{"n":"t"}]' })).err, /^4\.00 /);
    assert.match((await coapRequest(port, "/telemetry/s3", { method: "post", format: "text", payload: "21.5" })).err, /^4\.15 /);
    assert.match((await coapRequest(port, "/telemetry/s3", { method: "post", format: "json", payload: JSON.stringify({ x: "y".repeat(600) }) }, "127.0.0.1")).err, /^4\.13 /);
    assert.match((await coapRequest(port, "/nowhere/s3")).err, /^4\.04 /);
    assert.match((await coapRequest(port, "/telemetry/s3")).err, /^4\.05 /, "GET on the telemetry resource");
    assert.equal((await coapRequest(port, "/telemetry/s3", { method: "post", format: "json", payload: '{"t":1}' })).err, "");
    await recorder.waitFor((m) => m.properties.deviceId === "s3");
    const stats = translationStats(tg.gw.hub, "coap");
    assert.equal(stats?.malformed, 4);
    assert.equal(stats?.ingested, 1);
  });

  test("protocol mode: a method and a desired patch on the gateway reach an observing device as notifications", async (t) => {
    const { tg, port } = await coapGateway(t);
    const self = tg.gw.config.device_id;
    const obs = CoapObserver.start(port, "/commands/valve-1");
    t.after(() => obs.stop());
    await obs.next((l) => l === "[]");
    // 1. A method on the gateway names the device; the device answers on /commands/{id}/{rid}.
    const call = tg.gw.hub.invokeMethod(self, { methodName: "open", payload: { deviceId: "valve-1", payload: { percent: 40 } }, responseTimeoutInSeconds: 10 });
    const req = JSON.parse(await obs.next((l) => l.includes('"method"'))) as { rid: number; method: string; payload: unknown };
    assert.equal(req.method, "open");
    assert.deepEqual(req.payload, { percent: 40 });
    assert.equal((await coapRequest(port, `/commands/valve-1/${req.rid}`, { method: "post", format: "json", payload: '{"status":200,"payload":{"opened":40}}' })).err, "");
    assert.deepEqual(await call, { status: 200, payload: { opened: 40 } });
    assert.match((await coapRequest(port, `/commands/valve-1/${req.rid}`, { method: "post", payload: "{}" })).err, /^4\.04 /, "a late answer");
    // 2. Desired properties under `devices.<id>` of the gateway's twin: a notification, and GET /twin shows them.
    await tg.gw.hub.patchDesired(self, { devices: { "valve-1": { interval: 5 } } });
    assert.deepEqual(JSON.parse(await obs.next((l) => l.includes("desired"))), { desired: { interval: 5 } });
    const twin = JSON.parse((await coapRequest(port, "/twin/valve-1")).out) as Record<string, unknown>;
    assert.equal(twin.interval, 5);
  });

  test("identity mode: own identity and twin; a method waits for the device's next POST and its answer comes back", async (t) => {
    const { tg, recorder, port } = await coapGateway(t, { mode: "identity" });
    assert.equal((await coapRequest(port, "/telemetry/mote-7", { method: "post", format: "json", payload: '{"battery":3.1}' })).err, "");
    const m = await recorder.waitFor((x) => x.source === "mote-7");
    assert.equal(m.systemProperties.connectionDeviceId, "mote-7");
    assert.equal(m.properties.deviceId, undefined, "identity mode does not tag messages");
    assert.equal(tg.gw.identities.get("mote-7")?.status, "enabled");
    // 1. A sleepy device does not observe: the method is queued and rides on the response to its next POST.
    const call = tg.gw.hub.invokeMethod("mote-7", { methodName: "calibrate", payload: { offset: 2 }, responseTimeoutInSeconds: 10 });
    const pending = await waitUntil(() => coapRequest(port, "/telemetry/mote-7", { method: "post", format: "json", payload: '{"battery":3.0}' }), (r) => r.out !== "");
    const [cmd] = JSON.parse(pending.out) as [{ rid: number; method: string; payload: unknown }];
    assert.equal(cmd.method, "calibrate");
    assert.deepEqual(cmd.payload, { offset: 2 });
    await coapRequest(port, `/commands/mote-7/${cmd.rid}`, { method: "post", format: "json", payload: '{"status":202,"payload":"later"}' });
    assert.deepEqual(await call, { status: 202, payload: "later" });
    // 2. A desired patch on the device's own twin: GET /twin shows it; the command waits in the mailbox (poll).
    await tg.gw.hub.patchDesired("mote-7", { interval: 60 });
    const twin = JSON.parse((await coapRequest(port, "/twin/mote-7")).out) as Record<string, unknown>;
    assert.equal(twin.interval, 60);
    const polled = await waitUntil(() => coapRequest(port, "/commands/mote-7"), (r) => r.out !== "[]");
    assert.deepEqual(JSON.parse(polled.out), [{ desired: { interval: 60 } }]);
    // 3. C2D to the device's identity: delivered to an observer, completed.
    const obs = CoapObserver.start(port, "/commands/mote-7");
    t.after(() => obs.stop());
    await obs.next((l) => l === "[]");
    await tg.gw.hub.sendC2D("mote-7", { body: Buffer.from("wake"), properties: { why: "test" }, systemProperties: {} });
    assert.deepEqual(JSON.parse(await obs.next((l) => l.includes("c2d"))), { c2d: "wake", properties: { why: "test" } });
  });

  test("identity mode without auto_create: an unregistered device is refused 4.04, a registered one is taken", async (t) => {
    const { tg, recorder, port } = await coapGateway(t, { mode: "identity", auto_create: false });
    assert.match((await coapRequest(port, "/telemetry/stranger", { method: "post", format: "json", payload: '{"v":1}' })).err, /^4\.04 STRATA_TRANSLATION_UNKNOWN_DEVICE/);
    await tg.addDevice("known");
    assert.equal((await coapRequest(port, "/telemetry/known", { method: "post", format: "json", payload: '{"v":1}' })).err, "");
    await recorder.waitFor((m) => m.source === "known");
    assert.equal(tg.gw.identities.get("stranger"), undefined);
  });
}

async function coapGateway(t: TestContext, extra: Record<string, unknown> = {}) {
  const tg = await startTestGateway({ extraPlugins: [{ module: plugin, settings: { port: 0, max_payload_bytes: 512, ...extra } }] });
  const recorder = TelemetryRecorder.attach(tg.gw.hub, "test");
  t.after(async () => {
    recorder.stop();
    await tg.stop({ remove: true });
  });
  return { tg, recorder, port: tg.port(COAP_LISTENER) };
}

/**
 * Repeats a device request until its answer shows what the cloud side queued: the cloud call (a method, a
 * desired patch) reaches the plugin asynchronously, and a real device would simply ask again on its next wake.
 */
async function waitUntil<T>(ask: () => Promise<T>, done: (r: T) => boolean, tries = 50): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const r = await ask();
    if (done(r)) return r;
  }
  throw new Error(`no answer matched after ${tries} requests`);
}
