import assert from "node:assert/strict";
import { test } from "node:test";
import tls from "node:tls";
import { Message } from "azure-iot-device";
import { Client as ServiceClient } from "azure-iothub";
import { Amqp as ServiceAmqp } from "azure-iothub/dist/amqp.js";
import { signSas } from "../../../core/index.js";
import { sdkDevice } from "../mqtt/helpers.js";
import { amqpDevice, amqpGateway, closeBeforeStop, linkAttached, watchedLogger } from "./helpers.js";
import type { TestGateway } from "../../support/gateway.js";

/**
 * The service SDK dials `amqps://{host}` (5671 unless the host carries a port) and has no CA option: its host
 * is `localhost:{port}`, its token's audience the hub name, and the dev root joins this process's default CAs.
 */
async function serviceClient(gw: TestGateway): Promise<ServiceClient> {
  tls.setDefaultCACertificates([...tls.getCACertificates("default"), gw.caPem]);
  const sas = signSas({ resource: gw.hubName, key: gw.ownerKey, expirySecs: Math.floor(Date.now() / 1000) + 3600, keyName: "iothubowner" });
  const client = new ServiceClient(new ServiceAmqp({ host: `localhost:${gw.port("amqp")}`, sharedAccessSignature: sas } as never));
  await client.open();
  closeBeforeStop(gw, () => client.close());
  return client;
}

interface FeedbackRecord { originalMessageId: string; deviceId: string; statusCode: string }

test("azure-iothub Client.send reaches an AMQP device and an MQTT device; the feedback receiver reports completion", async (t) => {
  const log = watchedLogger();
  const gw = await amqpGateway(t, { plugins: ["amqp", "mqtt"], logger: log.logger });
  const a = await gw.addDevice("amqp-dev");
  const m = await gw.addDevice("mqtt-dev");
  const amqpDev = await amqpDevice(t, gw, "amqp-dev", a.key);
  const mqttDev = await sdkDevice(t, gw, m.connectionString);
  const completeAll = (dev: typeof amqpDev): Promise<Message> => new Promise((resolve) => {
    dev.on("message", (msg: Message) => void dev.complete(msg).then(() => resolve(msg)));
  });
  const gotAmqp = completeAll(amqpDev);
  const gotMqtt = completeAll(mqttDev);
  await linkAttached(log, "amqp-dev", "c2d");
  await log.waitFor((l) => l.msg === "mqtt subscribed" && l.clientId === "mqtt-dev");

  const service = await serviceClient(gw);
  const receiver = (await service.getFeedbackReceiver()).result;
  const records: FeedbackRecord[] = [];
  const bothReported = new Promise<void>((resolve) => {
    receiver.on("message", (msg: { data: Buffer }) => {
      records.push(...(JSON.parse(msg.data.toString()) as FeedbackRecord[]));
      void receiver.complete(msg as never, () => undefined);
      if (records.length >= 2) resolve();
    });
  });

  for (const [deviceId, messageId] of [["amqp-dev", "svc-1"], ["mqtt-dev", "svc-2"]] as const) {
    const msg = new Message(`hello ${deviceId}`);
    msg.messageId = messageId;
    (msg as unknown as { ack: string }).ack = "full";
    msg.properties.add("k", "v");
    await service.send(deviceId, msg);
  }
  assert.equal((await gotAmqp).data.toString(), "hello amqp-dev");
  assert.equal((await gotMqtt).data.toString(), "hello mqtt-dev");
  await bothReported;
  const summary = records.map((r) => `${r.deviceId}:${r.originalMessageId}:${r.statusCode}`).sort();
  assert.deepEqual(summary, ["amqp-dev:svc-1:Success", "mqtt-dev:svc-2:Success"]);
});

test("Client.send to an unknown device is refused, and a device token cannot open the service side", async (t) => {
  const gw = await amqpGateway(t);
  const service = await serviceClient(gw);
  await assert.rejects(service.send("nobody", new Message("x")), "DeviceNotFound-like refusal");
  const { key } = await gw.addDevice("d1");
  const deviceSas = signSas({ resource: `${gw.hubName}/devices/d1`, key, expirySecs: Math.floor(Date.now() / 1000) + 600 });
  const bad = new ServiceClient(new ServiceAmqp({ host: `localhost:${gw.port("amqp")}`, sharedAccessSignature: deviceSas } as never));
  await assert.rejects(bad.send("d1", new Message("x")));
  closeBeforeStop(gw, () => bad.close());
});
