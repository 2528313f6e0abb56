import assert from "node:assert/strict";
import { test } from "node:test";
import { connect, connectAsync, type IClientOptions } from "mqtt";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";
import { sasToken } from "./helpers.js";

function options(gw: TestGateway, key: string, clean: boolean): IClientOptions {
  return {
    host: gw.address, port: gw.port("mqtt"), protocol: "mqtts", ca: gw.caPem, servername: "localhost",
    clientId: "d1", username: `${gw.hubName}/d1/?api-version=2021-04-12`, password: sasToken(gw.hubName, "d1", key),
    clean, reconnectPeriod: 0, protocolVersion: 4,
  };
}

test("a gateway restarted while a clean=false device is offline keeps its subscriptions and a queued C2D", async (t) => {
  let gw = await startTestGateway({ plugins: ["mqtt"] });
  t.after(() => gw.stop({ remove: true }));
  const { key } = await gw.addDevice("d1");

  // 1. The device subscribes to C2D in a persistent session, then goes away.
  const before = await connectAsync(options(gw, key, false));
  await before.subscribeAsync("devices/d1/messages/devicebound/#", { qos: 1 });
  await before.endAsync();

  // 2. The gateway restarts (same data dir and ports); a C2D message is queued while the device is offline.
  await gw.stop();
  gw = await gw.restart();
  await gw.gw.hub.sendC2D("d1", { body: Buffer.from("while you were away"), properties: { n: "1" }, systemProperties: { messageId: "q-1" } });

  // 3. The device comes back with clean=false and subscribes to nothing: the session is present and the
  //    queued message arrives on its C2D topic.
  const after = connect(options(gw, key, false));
  t.after(() => after.endAsync(true));
  const connack = new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
    after.once("connect", (packet) => resolve(packet));
    after.once("error", reject);
  });
  const message = new Promise<{ topic: string; payload: Buffer }>((resolve) => after.once("message", (topic, payload) => resolve({ topic, payload })));
  assert.equal((await connack).sessionPresent, true);
  const got = await message;
  assert.equal(got.payload.toString(), "while you were away");
  assert.match(got.topic, /^devices\/d1\/messages\/devicebound\/.*%24\.mid=q-1/);
  assert.match(got.topic, /n=1/);
});

test("clean=true discards a stored session", async (t) => {
  const gw = await startTestGateway({ plugins: ["mqtt"] });
  t.after(() => gw.stop({ remove: true }));
  const { key } = await gw.addDevice("d1");
  const first = await connectAsync(options(gw, key, false));
  await first.subscribeAsync("devices/d1/messages/devicebound/#", { qos: 1 });
  await first.endAsync();
  const clean = await connectAsync(options(gw, key, true));
  await clean.endAsync();
  const again = connect(options(gw, key, false));
  t.after(() => again.endAsync(true));
  const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
    again.once("connect", (p) => resolve(p));
    again.once("error", reject);
  });
  assert.equal(connack.sessionPresent, false);
});
