// Per-head metrics after real traffic: Azure SDK devices over MQTT and AMQP, a C2D message, a refused
// credential; /metrics counts them per head, and promtool accepts the text.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Message } from "azure-iot-device";
import { connectAsync } from "mqtt";
import { amqpDevice, amqpGateway, closeBeforeStop } from "../amqp/helpers.js";
import { sdkDevice } from "../mqtt/helpers.js";
import { needPeer } from "../../support/peers.js";
import { startTestGateway } from "../../support/gateway.js";
import linePlugin, { TCP_LISTENER } from "../../../plugins/line-protocol/index.js";
import { translationStats } from "../../../core/translation/stats.js";
import { LineDevice } from "../translation/line-client.js";
import { eventually, get, metricsEntry, promtoolCheck } from "./helpers.js";

/** The value of one sample (`name{labels} value`), or undefined when it is not in the text. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("MQTT and AMQP heads: connections, messages and bytes in and out, auth failures", { skip: needPeer("prometheus", "promtool") }, async (t) => {
  const gw = await amqpGateway(t, { deviceId: "gw-heads", plugins: ["mqtt", "amqp"], extraPlugins: [metricsEntry()] });
  const d1 = await gw.addDevice("d-mqtt");
  const d2 = await gw.addDevice("d-amqp");

  const mqttClient = await sdkDevice(t, gw, d1.connectionString);
  closeBeforeStop(gw, () => mqttClient.close());
  const c2d = new Promise<void>((resolve) => mqttClient.on("message", (msg) => { void mqttClient.complete(msg).then(() => resolve()); }));
  for (let i = 0; i < 3; i++) await mqttClient.sendEvent(new Message(JSON.stringify({ n: i, pad: "x".repeat(100) })));
  const amqpClient = await amqpDevice(t, gw, "d-amqp", d2.key);
  for (let i = 0; i < 2; i++) await amqpClient.sendEvent(new Message(JSON.stringify({ n: i })));
  // One message down to the MQTT device once its C2D subscription is in (the SDK subscribes on 'message').
  await eventually("the mqtt device subscribed to C2D", async () => (gw.gw.hub.isConnected("d-mqtt") ? true : undefined));
  await gw.gw.hub.sendC2D("d-mqtt", { body: Buffer.from("down"), properties: {}, systemProperties: {} });
  await c2d;
  // A refused credential on the MQTT head: a token signed with the wrong key.
  const refused = await connectAsync({
    protocol: "mqtts", host: gw.address, port: gw.port("mqtt"), ca: gw.caPem, servername: "localhost", reconnectPeriod: 0,
    clientId: "d-mqtt", username: `${gw.hubName}/d-mqtt/?api-version=2021-04-12`, password: "SharedAccessSignature sr=x&sig=bad&se=99999999999",
  }).then((c) => c.endAsync().then(() => "connected"), (err: Error) => err.message);
  assert.notEqual(refused, "connected");
  const before = sample((await get(gw, "/metrics")).body, 'strata_head_auth_failures_total{head="mqtt",reason="malformed"}') ?? 0;
  // Refused before any credential is checked: a user name that is not `{hub}/{deviceId}/…`.
  const malformed = await connectAsync({
    protocol: "mqtts", host: gw.address, port: gw.port("mqtt"), ca: gw.caPem, servername: "localhost", reconnectPeriod: 0,
    clientId: "d-mqtt", username: "not-an-iot-hub-user-name", password: "x",
  }).then((c) => c.endAsync().then(() => "connected"), (err: Error) => err.message);
  assert.notEqual(malformed, "connected");
  const afterMalformed = sample((await get(gw, "/metrics")).body, 'strata_head_auth_failures_total{head="mqtt",reason="malformed"}') ?? 0;
  assert.equal(afterMalformed, before + 1, "a malformed CONNECT counts as an auth failure of the head");

  const text = await eventually("the C2D delivery was counted", async () => {
    const body = (await get(gw, "/metrics")).body;
    return (sample(body, 'strata_head_messages_out_total{head="mqtt"}') ?? 0) >= 1 ? body : undefined;
  });
  assert.equal(sample(text, 'strata_head_connections{head="mqtt"}'), 1);
  assert.equal(sample(text, 'strata_head_connections{head="amqp"}'), 1);
  assert.equal(sample(text, 'strata_head_messages_in_total{head="mqtt"}'), 3);
  assert.equal(sample(text, 'strata_head_messages_in_total{head="amqp"}'), 2);
  assert.ok(sample(text, 'strata_head_bytes_in_total{head="mqtt"}')! > 300);
  assert.ok(sample(text, 'strata_head_bytes_in_total{head="amqp"}')! > 0);
  assert.equal(sample(text, 'strata_head_bytes_out_total{head="mqtt"}'), 4);
  assert.ok((sample(text, 'strata_head_auth_failures_total{head="mqtt",reason="malformed"}') ?? 0)
    + (sample(text, 'strata_head_auth_failures_total{head="mqtt",reason="bad-signature"}') ?? 0)
    + (sample(text, 'strata_head_auth_failures_total{head="mqtt",reason="wrong-audience"}') ?? 0) >= 1, text.split("\n").filter((l) => l.includes("auth_failures")).join("\n"));
  const lint = await promtoolCheck(text);
  assert.equal(lint.code, 0, lint.output);
});

test("a translation head (line-protocol) counts its messages on /metrics; its translator stats stay readable by the gateway's hub", async (t) => {
  const gw = await startTestGateway({
    deviceId: "gw-line",
    extraPlugins: [metricsEntry(), { module: linePlugin, settings: { tcp_port: 0, udp_port: 0, ack: true } }],
  });
  t.after(() => gw.stop({ remove: true }));
  const d = await LineDevice.connect(gw.port(TCP_LISTENER));
  t.after(() => d.close());
  for (let i = 0; i < 3; i++) assert.equal(await d.send(JSON.stringify({ deviceId: "mcu-m", t: i })), "ok");
  assert.match(await d.send("{broken"), /^error STRATA_TRANSLATION_MALFORMED/);
  const text = await eventually("the line-protocol messages were counted", async () => {
    const body = (await get(gw, "/metrics")).body;
    return (sample(body, 'strata_head_messages_in_total{head="line-protocol"}') ?? 0) >= 3 ? body : undefined;
  });
  assert.equal(sample(text, 'strata_head_messages_in_total{head="line-protocol"}'), 3);
  assert.equal(translationStats(gw.gw.hub, "line-protocol")?.malformed, 1, "stats keyed by the gateway's hub, not the metered stand-in");
});
