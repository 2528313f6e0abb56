import assert from "node:assert/strict";
import { test } from "node:test";
import { Message } from "azure-iot-device";
import { mqttGateway, sdkDevice, sdkModule, sdkWsDevice, subscribed, takeFromQueue, watchedLogger, assertTelemetryWithProperties, assertTwinReported } from "./helpers.js";

test("Azure SDK over MQTT/TLS: telemetry, twin, desired patch, method, C2D", async (t) => {
  const log = watchedLogger();
  const gw = await mqttGateway(t, { logger: log.logger });
  const { connectionString } = await gw.addDevice("d1");
  const client = await sdkDevice(t, gw, connectionString);

  await t.test("sendEvent reaches the hub with its properties (PUBACK after the durable write)", () =>
    assertTelemetryWithProperties(gw, client, "d1"));

  await t.test("getTwin and a reported patch", () => assertTwinReported(gw, client, "d1"));

  await t.test("a desired patch made through the hub reaches the device", async () => {
    const twin = await client.getTwin();
    const got = new Promise<Record<string, unknown>>((resolve) => {
      twin.on("properties.desired", (delta: Record<string, unknown>) => {
        if (delta.interval === 30) resolve(delta);
      });
    });
    await gw.gw.hub.patchDesired("d1", { interval: 30 });
    const delta = await got;
    assert.equal(delta.interval, 30);
    assert.equal(typeof delta.$version, "number");
  });

  await t.test("a direct method invoked through the hub is answered by the device", async () => {
    client.onDeviceMethod("reboot", (req, res) => {
      res.send(200, { echoed: req.payload }, () => undefined);
    });
    // onDeviceMethod subscribes lazily: wait until the head granted the subscription.
    await subscribed(log, "d1", "$iothub/methods/POST/#");
    const result = await gw.gw.hub.invokeMethod("d1", { methodName: "reboot", payload: { delay: 5 }, responseTimeoutInSeconds: 10 });
    assert.deepEqual(result, { status: 200, payload: { echoed: { delay: 5 } } });
  });

  await t.test("a C2D message queued through the hub is delivered and completed", async () => {
    const received = new Promise<Message>((resolve) => {
      client.on("message", (m: Message) => {
        void client.complete(m);
        resolve(m);
      });
    });
    await gw.gw.hub.sendC2D("d1", { body: Buffer.from("hello"), properties: { k: "v w" }, systemProperties: { messageId: "c2d-1" } });
    const m = await received;
    assert.equal(m.data.toString(), "hello");
    assert.equal(m.messageId, "c2d-1");
    assert.equal(m.properties.getValue("k"), "v w");
  });
});

test("Azure SDK over MQTT/WebSocket on the HTTPS port: telemetry, twin, method, C2D", async (t) => {
  const log = watchedLogger();
  const gw = await mqttGateway(t, { logger: log.logger });
  const { key } = await gw.addDevice("w1");
  const client = await sdkWsDevice(t, gw, "w1", key);

  const msg = new Message("over-ws");
  msg.properties.add("via", "ws");
  await client.sendEvent(msg);
  const [lease] = await takeFromQueue(gw, "$upstream", 1);
  assert.equal(lease!.message.source, "w1");
  assert.deepEqual(lease!.message.properties, { via: "ws" });

  const twin = await client.getTwin();
  await new Promise<void>((resolve, reject) => twin.properties.reported.update({ ws: true }, (err?: Error) => (err ? reject(err) : resolve())));
  assert.equal((await gw.gw.hub.getTwin("w1")).properties.reported.ws, true);

  client.onDeviceMethod("ping", (_req, res) => res.send(201, "pong", () => undefined));
  await subscribed(log, "w1", "$iothub/methods/POST/#");
  assert.deepEqual(await gw.gw.hub.invokeMethod("w1", { methodName: "ping", payload: null, responseTimeoutInSeconds: 10 }), { status: 201, payload: "pong" });

  const received = new Promise<Message>((resolve) => client.on("message", (m: Message) => void client.complete(m).then(() => resolve(m))));
  await gw.gw.hub.sendC2D("w1", { body: Buffer.from("down"), properties: {}, systemProperties: {} });
  assert.equal((await received).data.toString(), "down");
});

test("ModuleClient output → route → another module's input, with $.cdid/$.cmid", async (t) => {
  const log = watchedLogger();
  const gw = await mqttGateway(t, {
    logger: log.logger,
    config: { routes: { aToB: 'FROM /messages/modules/modA/outputs/out1 INTO BrokeredEndpoint("/modules/modB/inputs/in1")' } },
  });
  const a = await gw.addDevice("gw-root", { moduleId: "modA" });
  const b = await gw.addDevice("gw-root", { moduleId: "modB" });
  const modA = await sdkModule(t, gw, a.connectionString);
  const modB = await sdkModule(t, gw, b.connectionString);

  const got = new Promise<{ input: string; msg: Message }>((resolve) => {
    modB.on("inputMessage", (input: string, msg: Message) => {
      void modB.complete(msg).then(() => resolve({ input, msg }));
    });
  });
  await subscribed(log, "gw-root/modB", "devices/gw-root/modules/modB/inputs/#");
  const out = new Message("to-b");
  out.properties.add("p", "1");
  await modA.sendOutputEvent("out1", out);
  const { input, msg } = await got;
  assert.equal(input, "in1");
  assert.equal(msg.data.toString(), "to-b");
  assert.equal(msg.properties.getValue("p"), "1");
  assert.equal(msg.properties.getValue("$.cdid"), "gw-root");
  assert.equal(msg.properties.getValue("$.cmid"), "modA");
});
