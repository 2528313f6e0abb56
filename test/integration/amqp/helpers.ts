import https from "node:https";
import tls from "node:tls";
import type { TestContext } from "node:test";
import { Client, ModuleClient } from "azure-iot-device";
import { Amqp, AmqpWs } from "azure-iot-device-amqp";
import { deviceConnectionString } from "../../../core/index.js";
import { startTestGateway, type TestGateway, type TestGatewayOptions } from "../../support/gateway.js";
import type { watchedLogger } from "../mqtt/helpers.js";

export { takeFromQueue, watchedLogger, sasToken, assertTelemetryWithProperties, assertTwinReported } from "../mqtt/helpers.js";

const closers = new WeakMap<TestGateway, Array<() => Promise<unknown>>>();

/**
 * A gateway running the AMQP head, stopped (and its data removed) after the test — after the clients opened
 * with the helpers below are closed: a client whose gateway went away first spends its retry policy reconnecting.
 */
export async function amqpGateway(t: TestContext, opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const gw = await startTestGateway({ plugins: ["amqp"], ...opts });
  const list: Array<() => Promise<unknown>> = [];
  closers.set(gw, list);
  t.after(async () => {
    await Promise.all(list.map((close) => close().catch(() => undefined)));
    await gw.stop({ remove: true });
  });
  return gw;
}

/** Close `close` before the gateway stops (see amqpGateway). */
export function closeBeforeStop(gw: TestGateway, close: () => Promise<unknown>): void {
  const list = closers.get(gw);
  if (!list) throw new Error("closeBeforeStop needs a gateway from amqpGateway()");
  list.push(close);
}

/** A device (or module) connection string whose GatewayHostName points at the AMQP port. */
export function amqpConnectionString(gw: TestGateway, id: string, key: string): string {
  const [deviceId, moduleId] = id.split("/");
  return deviceConnectionString({
    hub: gw.hubName, deviceId: deviceId!, ...(moduleId ? { moduleId } : {}), key, gatewayHostName: `localhost:${gw.port("amqp")}`,
  });
}

/** An Azure SDK device client over AMQP/TLS, open, closed after the test. */
export async function amqpDevice(_t: TestContext, gw: TestGateway, id: string, key: string): Promise<Client> {
  const client = Client.fromConnectionString(amqpConnectionString(gw, id, key), Amqp);
  await client.setOptions({ ca: gw.caPem });
  await client.open();
  closeBeforeStop(gw, () => client.close());
  return client;
}

export async function amqpModule(_t: TestContext, gw: TestGateway, id: string, key: string): Promise<ModuleClient> {
  const client = ModuleClient.fromConnectionString(amqpConnectionString(gw, id, key), Amqp);
  await client.setOptions({ ca: gw.caPem });
  await client.open();
  closeBeforeStop(gw, () => client.close());
  return client;
}

/** AMQP over WebSocket: the SDK dials 443, so its webSocketAgent is sent to the gateway's HTTPS port (spikes.md §5). */
export async function amqpWsDevice(_t: TestContext, gw: TestGateway, id: string, key: string): Promise<Client> {
  const cs = deviceConnectionString({ hub: gw.hubName, deviceId: id, key, gatewayHostName: "localhost" });
  const client = Client.fromConnectionString(cs, AmqpWs);
  const agent = new https.Agent({ ca: gw.caPem });
  const port = gw.port("https");
  (agent as unknown as { createConnection: (o: tls.ConnectionOptions) => tls.TLSSocket }).createConnection = (o) =>
    tls.connect({ ...o, host: gw.address, servername: "localhost", port });
  await client.setOptions({ ca: gw.caPem, amqp: { webSocketAgent: agent } } as never);
  await client.open();
  closeBeforeStop(gw, async () => {
    await client.close();
    agent.destroy();
  });
  return client;
}

/** Waits until the head logged that `identity` attached a link of `kind` (c2d, inputs, twin, methods). */
export function linkAttached(log: ReturnType<typeof watchedLogger>, identity: string, kind: string): Promise<unknown> {
  return log.waitFor((l) => l.msg === "amqp link attached" && l.identity === identity && l.kind === kind);
}
