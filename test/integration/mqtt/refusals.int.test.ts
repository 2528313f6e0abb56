import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import tls from "node:tls";
import { connectAsync, type IClientOptions, type MqttClient } from "mqtt";
import type { DeviceLink } from "../../../core/index.js";
import type { TestGateway } from "../../support/gateway.js";
import { mqttGateway, sasToken, takeFromQueue, watchedLogger } from "./helpers.js";

/** MQTT.js over TLS to the test gateway, with a hand-made SAS token. */
function options(gw: TestGateway, clientId: string, password: string | undefined, extra: Partial<IClientOptions> = {}): IClientOptions {
  return {
    host: gw.address,
    port: gw.port("mqtt"),
    protocol: "mqtts",
    ca: gw.caPem,
    servername: "localhost",
    clientId,
    username: `${gw.hubName}/${clientId}/?api-version=2021-04-12`,
    ...(password === undefined ? {} : { password }),
    clean: true,
    reconnectPeriod: 0,
    protocolVersion: 4,
    ...extra,
  };
}

async function refusedWith(opts: IClientOptions): Promise<number | undefined> {
  try {
    const c = await connectAsync(opts);
    await c.endAsync(true);
    return 0;
  } catch (err) {
    return (err as { code?: number }).code;
  }
}

test("MQTT.js with hand-made SAS tokens: each bad CONNECT or PUBLISH is refused, a bystander is undisturbed", async (t) => {
  const log = watchedLogger();
  const gw = await mqttGateway(t, { logger: log.logger });
  const d1 = await gw.addDevice("d1");
  const d2 = await gw.addDevice("d2");

  // The bystander stays connected through every refusal below and must never see its connection drop.
  const bystander = await connectAsync(options(gw, "d2", sasToken(gw.hubName, "d2", d2.key)));
  let bystanderClosed = 0;
  bystander.on("close", () => bystanderClosed++);
  t.after(() => bystander.endAsync(true));

  const device = await connectAsync(options(gw, "d1", sasToken(gw.hubName, "d1", d1.key)));
  let deviceClosed = 0;
  device.on("close", () => deviceClosed++);
  t.after(() => device.endAsync(true));

  await t.test("wrong key: CONNACK 4 (bad user name or password)", async () => {
    const wrong = sasToken(gw.hubName, "d1", d2.key);
    assert.equal(await refusedWith(options(gw, "d1", wrong)), 4);
  });

  await t.test("expired token: CONNACK 4", async () => {
    assert.equal(await refusedWith(options(gw, "d1", sasToken(gw.hubName, "d1", d1.key, -3600))), 4);
  });

  await t.test("unknown identity: CONNACK 5 (not authorized)", async () => {
    assert.equal(await refusedWith(options(gw, "ghost", sasToken(gw.hubName, "ghost", d1.key))), 5);
  });

  await t.test("a token of another device: CONNACK 5", async () => {
    assert.equal(await refusedWith(options(gw, "d1", sasToken(gw.hubName, "d2", d2.key))), 5);
  });

  await t.test("bad client id: CONNACK 2 (identifier rejected)", async () => {
    const opts = options(gw, "a/b/c", sasToken(gw.hubName, "d1", d1.key));
    assert.equal(await refusedWith(opts), 2);
  });

  await t.test("no credentials at all: CONNACK 4", async () => {
    assert.equal(await refusedWith(options(gw, "d1", undefined)), 4);
  });

  await t.test("a username naming another identity: CONNACK 4", async () => {
    const opts = { ...options(gw, "d1", sasToken(gw.hubName, "d1", d1.key)), username: `${gw.hubName}/d2/?api-version=1` };
    assert.equal(await refusedWith(opts), 4);
  });

  await t.test("malformed CONNECT (raw bytes): the socket is closed, nothing else happens", async () => {
    for (const bytes of [
      // CONNECT with protocol name "XXXX" [MQTT-3.1.2-1]
      Buffer.from([0x10, 0x0e, 0x00, 0x04, 0x58, 0x58, 0x58, 0x58, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, 0x64, 0x31]),
      Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]) {
      const socket = tls.connect({ host: gw.address, port: gw.port("mqtt"), ca: gw.caPem, servername: "localhost" });
      t.after(() => socket.destroy());
      await once(socket, "secureConnect");
      socket.on("error", () => undefined);
      socket.write(bytes);
      await once(socket, "close");
    }
  });

  await t.test("publishing on another device's topic: no PUBACK, not ingested, the connection stays up", async () => {
    let acked = false;
    device.publish("devices/d2/messages/events/", "spoof", { qos: 1 }, (err) => {
      if (!err) acked = true;
    });
    await log.waitFor((l) => l.msg === "mqtt publish refused" && l.clientId === "d1" && String(l.topic).startsWith("devices/d2/"));
    // 1. Its own telemetry after the refused one is acknowledged on the same connection...
    await device.publishAsync("devices/d1/messages/events/n=1", "own", { qos: 1 });
    // 2. ...and only that one reached the hub.
    const leases = await takeFromQueue(gw, "$upstream", 1);
    assert.equal(leases[0]!.message.body.toString(), "own");
    assert.equal(acked, false);
    gw.gw.store.queue("$upstream").release(leases);
  });

  await t.test("subscribing to another device's C2D: SUBACK 0x80", async () => {
    // MQTT.js rejects a subscribe whose SUBACK says 0x80.
    await assert.rejects(device.subscribeAsync("devices/d2/messages/devicebound/#", { qos: 1 }), (err: Error & { packet?: { granted?: number[] } }) => {
      assert.deepEqual(err.packet?.granted, [128]);
      return true;
    });
    const own = await device.subscribeAsync("devices/d1/messages/devicebound/#", { qos: 1 });
    assert.equal(own[0]!.qos, 1);
  });

  await t.test("QoS 2 subscription is granted QoS 1; QoS 2 publish gets no PUBREC", async () => {
    const granted = await device.subscribeAsync("$iothub/twin/res/#", { qos: 2 });
    assert.equal(granted[0]!.qos, 1);
    let done = false;
    device.publish("devices/d1/messages/events/q=2", "two", { qos: 2 }, () => {
      done = true;
    });
    await log.waitFor((l) => l.msg === "mqtt publish refused" && l.clientId === "d1" && l.qos === 2);
    await device.publishAsync("devices/d1/messages/events/after=q2", "after", { qos: 1 });
    assert.equal(done, false);
  });

  await t.test("an oversized payload is refused with a clear log line, the connection stays up", async () => {
    let acked = false;
    device.publish("devices/d1/messages/events/", Buffer.alloc(256 * 1024 + 1, 1), { qos: 1 }, (err) => {
      if (!err) acked = true;
    });
    const line = await log.waitFor((l) => l.msg === "mqtt publish refused" && l.clientId === "d1" && /over the limit/.test(String(l.reason)));
    assert.match(String(line.reason), /max_message_bytes/);
    await device.publishAsync("devices/d1/messages/events/after=big", "small", { qos: 1 });
    assert.equal(acked, false);
  });

  await t.test("the refused device and the bystander are still connected and working", async () => {
    assert.equal(deviceClosed, 0);
    assert.equal(bystanderClosed, 0);
    assert.equal(device.connected, true);
    await bystander.publishAsync("devices/d2/messages/events/", "still here", { qos: 1 });
  });
});

test("max_clients: CONNACK 3 when the gateway is full, also on reconnect; a connected identity's reconnect replaces it", async (t) => {
  const gw = await mqttGateway(t);
  const d1 = await gw.addDevice("d1");
  const d2 = await gw.addDevice("d2");
  // 1. 99 other identities take the hub's default max_clients (100) but one.
  const fakes = Array.from({ length: 99 }, (_, i) => gw.gw.hub.attach(fakeLink(`fake-${i}`)));
  t.after(() => fakes.forEach((a) => a.detach()));
  // 2. d1 takes the last place; d2 is refused with "server unavailable".
  const first: MqttClient = await connectAsync(options(gw, "d1", sasToken(gw.hubName, "d1", d1.key)));
  t.after(() => first.endAsync(true));
  assert.equal(await refusedWith(options(gw, "d2", sasToken(gw.hubName, "d2", d2.key))), 3);
  // 3. d1 reconnecting while still connected replaces its old connection [MQTT-3.1.4-2] instead of being refused.
  const closed = new Promise<void>((resolve) => first.once("close", () => resolve()));
  const second = await connectAsync(options(gw, "d1", sasToken(gw.hubName, "d1", d1.key)));
  await closed;
  await second.publishAsync("devices/d1/messages/events/", "x", { qos: 1 });
  // 4. Still full: d2 is refused again on its retry (iotedge #7507: the limit must hold on reconnect too).
  assert.equal(await refusedWith(options(gw, "d2", sasToken(gw.hubName, "d2", d2.key))), 3);
  // 5. Once d1 leaves, d2 gets in.
  await second.endAsync();
  const third = await connectAsync(options(gw, "d2", sasToken(gw.hubName, "d2", d2.key)));
  t.after(() => third.endAsync(true));
  assert.equal(third.connected, true);
});

function fakeLink(id: string): DeviceLink {
  return {
    principal: { id, deviceId: id, method: "sas" },
    head: "test",
    accepts: () => false,
    deliverC2D: async () => "abandoned",
    deliverInput: async () => undefined,
    desiredPatch: () => undefined,
    invokeMethod: async () => ({ status: 404, payload: null }),
    close: () => undefined,
  };
}
