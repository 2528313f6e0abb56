// End to end with both real SDKs: a device created with azure-iothub's Registry connects with
// azure-iot-device over MQTT; its telemetry lands in the root's log; a desired patch made with Twin.update
// and a method invoked with Client.invokeDeviceMethod reach it and come back.
import { test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { Message } from "azure-iot-device";
import { Amqp, Client as ServiceClient, Registry } from "azure-iothub";
import { RestApiClient } from "azure-iothub/dist/common-http/rest_api_client";
import { SharedAccessSignature } from "azure-iothub/dist/common-core/shared_access_signature";
import { deviceConnectionString } from "../../../core/index.js";
import { follow, readLast, rootDataDir } from "../../../plugins/root/index.js";
import { telemetryLogDir } from "../../../plugins/root/telemetry/segments.js";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";
import { sdkDevice, subscribed, watchedLogger } from "../mqtt/helpers.js";

const ADDRESS = "127.0.0.48";
const skip = process.getuid?.() === 0 ? false : "needs root to bind port 443 (CI runs as root)";

/** Service SDK objects trusting the dev CA (the constructors reset the REST options, so set them after). */
function serviceSdk(gw: TestGateway) {
  const sas = SharedAccessSignature.create(gw.hubName, "iothubowner", gw.ownerKey, Math.floor(Date.now() / 1000) + 3600).toString();
  const config = { host: gw.hubName, sharedAccessSignature: sas } as unknown as Registry.TransportConfig;
  const trust = () => ({ ca: gw.caPem, http: { agent: new https.Agent({ ca: gw.caPem, keepAlive: false }) } });
  const registryRest = new RestApiClient(config as never, "strata-test");
  const registry = new Registry(config, registryRest);
  registryRest.setOptions(trust());
  const clientRest = new RestApiClient(config as never, "strata-test");
  const client = new ServiceClient(new Amqp(config as never), clientRest);
  clientRest.setOptions(trust());
  return { registry, client };
}

test("device SDK over MQTT and service SDK over HTTPS meet at the root", { skip }, async (t) => {
  const log = watchedLogger();
  const gw = await startTestGateway({ plugins: ["mqtt", "root"], address: ADDRESS, hub: ADDRESS, ports: { https: 443 }, logger: log.logger });
  t.after(() => gw.stop({ remove: true }));
  const { registry, client: service } = serviceSdk(gw);

  // 1. The service creates the device; the device connects with the generated key.
  const created = (await registry.create({ deviceId: "e2e-1" })).responseBody;
  const cs = deviceConnectionString({
    hub: gw.hubName, deviceId: "e2e-1", key: created.authentication!.symmetricKey!.primaryKey!,
    gatewayHostName: `${ADDRESS}:${gw.port("mqtt")}`,
  });
  const device = await sdkDevice(t as never, gw, cs);

  // 2. Telemetry: sendEvent resolves on PUBACK; the sink then writes it to the log (wait on the log).
  const dir = telemetryLogDir(rootDataDir(gw.gw.config));
  const abort = new AbortController();
  t.after(() => abort.abort());
  const start = await readLast(dir);
  const logged = new Promise<Record<string, unknown>>((resolve) => {
    void follow(dir, start.position, (line) => resolve(JSON.parse(line)), abort.signal, 100);
  });
  const msg = new Message(JSON.stringify({ temp: 21 }));
  msg.messageId = "e2e-m1";
  msg.properties.add("alert", "yes");
  await device.sendEvent(msg);
  const line = await logged;
  assert.equal(line["deviceId"], "e2e-1");
  assert.equal(line["messageId"], "e2e-m1");
  assert.deepEqual(line["properties"], { alert: "yes" });
  assert.equal(line["body"], JSON.stringify({ temp: 21 }));

  // 3. Desired patch through the service SDK's Twin.update reaches the device.
  const deviceTwin = await device.getTwin();
  const delta = new Promise<Record<string, unknown>>((resolve) => {
    deviceTwin.on("properties.desired", (d: Record<string, unknown>) => {
      if (d["interval"] === 30) resolve(d);
    });
  });
  const twin = (await registry.getTwin("e2e-1")).responseBody;
  await twin.update({ properties: { desired: { interval: 30 } } });
  assert.equal((await delta)["interval"], 30);

  // 4. A direct method through Client.invokeDeviceMethod, answered by the device.
  device.onDeviceMethod("reboot", (req, res) => res.send(200, { echoed: req.payload }, () => undefined));
  await subscribed(log, "e2e-1", "$iothub/methods/POST/#");
  const result = await service.invokeDeviceMethod("e2e-1", { methodName: "reboot", payload: { delay: 1 }, responseTimeoutInSeconds: 10 });
  assert.deepEqual(result.result, { status: 200, payload: { echoed: { delay: 1 } } });
  // 5. Close the device while the gateway still runs (closing it after the gateway stopped can hang the SDK).
  abort.abort();
  await device.close();
});
