import assert from "node:assert/strict";
import { test } from "node:test";
import { Message } from "azure-iot-device";
import { amqpDevice, amqpGateway, amqpModule, amqpWsDevice, linkAttached, takeFromQueue, watchedLogger, assertTelemetryWithProperties, assertTwinReported } from "./helpers.js";

test("Azure SDK over AMQP/TLS: telemetry, twin, desired patch, method, C2D complete/reject/abandon", async (t) => {
  const log = watchedLogger();
  const gw = await amqpGateway(t, { logger: log.logger });
  const { key } = await gw.addDevice("d1");
  const client = await amqpDevice(t, gw, "d1", key);

  await t.test("sendEvent reaches the hub with its properties (accepted after the durable write)", () =>
    assertTelemetryWithProperties(gw, client, "d1"));

  await t.test("getTwin and a reported patch", () => assertTwinReported(gw, client, "d1"));

  await t.test("a desired patch made through the hub reaches the device", async () => {
    const twin = await client.getTwin();
    const got = new Promise<Record<string, unknown>>((resolve) => {
      twin.on("properties.desired", (delta: Record<string, unknown>) => {
        if (delta.interval === 30) resolve(delta);
      });
    });
    // The SDK subscribes (twin PUT) when the listener is added; wait for the hub to see it.
    await log.waitFor((l) => l.msg === "amqp desired subscription" && l.identity === "d1" && l.on === true);
    await gw.gw.hub.patchDesired("d1", { interval: 30 });
    const delta = await got;
    assert.equal(delta.interval, 30);
    assert.equal(typeof delta.$version, "number");
  });

  await t.test("a direct method invoked through the hub is answered by the device", async () => {
    client.onDeviceMethod("reboot", (req, res) => {
      res.send(200, { echoed: req.payload }, () => undefined);
    });
    await linkAttached(log, "d1", "methods");
    const result = await gw.gw.hub.invokeMethod("d1", { methodName: "reboot", payload: { delay: 5 }, responseTimeoutInSeconds: 10 });
    assert.deepEqual(result, { status: 200, payload: { echoed: { delay: 5 } } });
  });

  await t.test("C2D: complete, reject and abandon reach the hub as outcomes", async () => {
    const seen: string[] = [];
    const done = new Promise<void>((resolve) => {
      client.on("message", (m: Message) => {
        const body = m.data.toString();
        seen.push(body);
        if (body === "complete-me") void client.complete(m);
        else if (body === "reject-me") void client.reject(m);
        else if (body === "abandon-me") {
          // 1. abandoned once: the hub redelivers it; complete the second time.
          if (seen.filter((s) => s === "abandon-me").length === 1) void client.abandon(m);
          else void client.complete(m).then(() => resolve());
        }
      });
    });
    await linkAttached(log, "d1", "c2d");
    await gw.gw.hub.sendC2D("d1", { body: Buffer.from("complete-me"), properties: { k: "v w" }, systemProperties: { messageId: "c2d-1", ack: "full" } });
    await gw.gw.hub.sendC2D("d1", { body: Buffer.from("reject-me"), properties: {}, systemProperties: { messageId: "c2d-2", ack: "full" } });
    await gw.gw.hub.sendC2D("d1", { body: Buffer.from("abandon-me"), properties: {}, systemProperties: { messageId: "c2d-3" } });
    await done;
    // 2. Feedback records (IoT Hub's shape) tell completion from rejection.
    const feedback = await takeFromQueue(gw, "$feedback", 2);
    const records = feedback.map((l) => JSON.parse(l.message.body.toString()) as { originalMessageId: string; statusCode: string });
    assert.deepEqual(records.map((r) => `${r.originalMessageId}:${r.statusCode}`).sort(), ["c2d-1:Success", "c2d-2:Rejected"]);
    assert.deepEqual(seen.filter((s) => s === "abandon-me").length, 2);
    assert.ok(seen.includes("complete-me") && seen.includes("reject-me"));
  });
});

test("Azure SDK over AMQP/WebSocket on the HTTPS port: telemetry and a method", async (t) => {
  const log = watchedLogger();
  const gw = await amqpGateway(t, { logger: log.logger });
  const { key } = await gw.addDevice("w1");
  const client = await amqpWsDevice(t, gw, "w1", key);
  const msg = new Message("over-ws");
  msg.properties.add("via", "ws");
  await client.sendEvent(msg);
  const [lease] = await takeFromQueue(gw, "$upstream", 1);
  assert.equal(lease!.message.source, "w1");
  assert.deepEqual(lease!.message.properties, { via: "ws" });
  client.onDeviceMethod("ping", (_req, res) => res.send(201, "pong", () => undefined));
  await linkAttached(log, "w1", "methods");
  assert.deepEqual(await gw.gw.hub.invokeMethod("w1", { methodName: "ping", payload: null, responseTimeoutInSeconds: 10 }), { status: 201, payload: "pong" });
});

test("ModuleClient over AMQP: output → route → another module's input (x-opt-input-name)", async (t) => {
  const log = watchedLogger();
  const gw = await amqpGateway(t, {
    logger: log.logger,
    config: { routes: { aToB: 'FROM /messages/modules/modA/outputs/out1 INTO BrokeredEndpoint("/modules/modB/inputs/in1")' } },
  });
  const a = await gw.addDevice("gw-root", { moduleId: "modA" });
  const b = await gw.addDevice("gw-root", { moduleId: "modB" });
  const modA = await amqpModule(t, gw, "gw-root/modA", a.key);
  const modB = await amqpModule(t, gw, "gw-root/modB", b.key);
  const got = new Promise<{ input: string; msg: Message }>((resolve) => {
    modB.on("inputMessage", (input: string, msg: Message) => {
      void modB.complete(msg).then(() => resolve({ input, msg }));
    });
  });
  await linkAttached(log, "gw-root/modB", "inputs");
  const out = new Message("to-b");
  out.properties.add("p", "1");
  await modA.sendOutputEvent("out1", out);
  const { input, msg } = await got;
  assert.equal(input, "in1");
  assert.equal(msg.data.toString(), "to-b");
  assert.equal(msg.properties.getValue("p"), "1");
});
