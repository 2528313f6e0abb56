import assert from "node:assert/strict";
import { test } from "node:test";
import { Client, Message } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { startTestGateway } from "../../support/gateway.js";
import { startMosquitto } from "../../support/mosquitto.js";
import { needPeer } from "../../support/peers.js";
import { subscriber } from "./harness.js";

test("a root gateway republishes an Azure SDK device's events to mosquitto, with their properties", { skip: needPeer("mosquitto") }, async (t) => {
  const broker = await startMosquitto(t);
  const sub = await subscriber(t, broker.url, "strata/#");
  const gw = await startTestGateway({
    plugins: ["mqtt", "mqtt-sink"],
    config: { plugins: { "mqtt-sink": { url: broker.url } } },
  });
  t.after(() => gw.stop({ remove: true }));
  const { connectionString } = await gw.addDevice("sensor-1");
  const device = Client.fromConnectionString(connectionString, Mqtt);
  await device.setOptions({ ca: gw.caPem });
  await device.open();
  t.after(() => device.close().catch(() => undefined));

  const count = 1000;
  await Promise.all(Array.from({ length: count }, (_, i) => {
    const m = new Message(JSON.stringify({ i, t: 20 + (i % 7) }));
    m.messageId = `msg-${i}`;
    m.contentType = "application/json";
    m.contentEncoding = "utf-8";
    m.properties.add("seq", String(i));
    m.properties.add("alert", i % 10 === 0 ? "high" : "none");
    return device.sendEvent(m);
  }));
  // Every event was acknowledged to the device (durable at the root); now each must reach the broker.
  await sub.waitFor(count);
  const seen = new Map<string, (typeof sub.received)[number]>();
  for (const r of sub.received) seen.set(r.userProperties["$.mid"] as string, r);
  assert.equal(seen.size, count);
  for (let i = 0; i < count; i += 97) {
    const r = seen.get(`msg-${i}`)!;
    assert.equal(r.topic, "strata/sensor-1/messages");
    assert.deepEqual(JSON.parse(r.payload.toString()), { i, t: 20 + (i % 7) });
    assert.equal(r.userProperties.seq, String(i));
    assert.equal(r.userProperties.alert, i % 10 === 0 ? "high" : "none");
    assert.equal(r.userProperties["$.cdid"], "sensor-1");
    assert.equal(r.contentType, "application/json");
    assert.match(r.userProperties["strata-id"] as string, /^gw-root:\d+$/);
  }
});

test("a route that names the sink sends it only what matches", { skip: needPeer("mosquitto") }, async (t) => {
  const broker = await startMosquitto(t);
  const sub = await subscriber(t, broker.url, "north/#");
  const gw = await startTestGateway({
    plugins: ["mqtt", "mqtt-sink"],
    config: {
      routes: { alerts: "FROM /messages/* WHERE alert = 'high' INTO north" },
      plugins: { "mqtt-sink": { url: broker.url, name: "north", topic: "north/{hub}/{deviceId}" } },
    },
  });
  t.after(() => gw.stop({ remove: true }));
  const { connectionString } = await gw.addDevice("sensor-2");
  const device = Client.fromConnectionString(connectionString, Mqtt);
  await device.setOptions({ ca: gw.caPem });
  await device.open();
  t.after(() => device.close().catch(() => undefined));
  for (let i = 0; i < 20; i++) {
    const m = new Message(`reading ${i}`);
    m.messageId = `r-${i}`;
    m.properties.add("alert", i % 5 === 0 ? "high" : "none");
    await device.sendEvent(m);
  }
  // 1. the four matching ones arrive; 2. one more marker, also matching, proves nothing else was in between.
  const marker = new Message("marker");
  marker.messageId = "marker";
  marker.properties.add("alert", "high");
  await device.sendEvent(marker);
  await sub.waitFor(5);
  assert.deepEqual(sub.received.map((r) => r.userProperties["$.mid"]), ["r-0", "r-5", "r-10", "r-15", "marker"]);
  assert.equal(sub.received[0]!.topic, "north/testhub/sensor-2");
});

test("messages queued for a broker that is down survive a gateway restart and are delivered after it", { skip: needPeer("mosquitto") }, async (t) => {
  const broker = await startMosquitto(t, { persistence: true });
  const sub = await subscriber(t, broker.url, "strata/#");
  await broker.stop();
  const gw = await startTestGateway({ plugins: ["mqtt", "mqtt-sink"], config: { plugins: { "mqtt-sink": { url: broker.url } } } });
  const { connectionString } = await gw.addDevice("sensor-3");
  const device = Client.fromConnectionString(connectionString, Mqtt);
  await device.setOptions({ ca: gw.caPem });
  await device.open();
  // 1. acknowledged to the device while the broker is down: only the root's queue holds them.
  await Promise.all(Array.from({ length: 100 }, (_, i) => {
    const m = new Message(`v${i}`);
    m.messageId = `q-${i}`;
    return device.sendEvent(m);
  }));
  await device.close();
  // 2. the gateway goes away and comes back; 3. so does the broker; 4. every message arrives.
  await gw.stop();
  const again = await gw.restart();
  t.after(() => again.stop({ remove: true }));
  await broker.start();
  await sub.waitFor(100);
  const mids = new Set(sub.received.map((r) => r.userProperties["$.mid"]));
  assert.equal(mids.size, 100);
});
