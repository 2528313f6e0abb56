import assert from "node:assert/strict";
import https from "node:https";
import { Writable } from "node:stream";
import tls from "node:tls";
import type { TestContext } from "node:test";
import { Client, Message, ModuleClient } from "azure-iot-device";
import { Mqtt, MqttWs } from "azure-iot-device-mqtt";
import pino from "pino";
import { deviceConnectionString, signSas, type Lease, type Logger } from "../../../core/index.js";
import { startTestGateway, type TestGateway, type TestGatewayOptions } from "../../support/gateway.js";

/** A gateway running the MQTT head, stopped (and its data removed) after the test. */
export async function mqttGateway(t: TestContext, opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const gw = await startTestGateway({ plugins: ["mqtt"], ...opts });
  t.after(() => gw.stop({ remove: true }));
  return gw;
}

/** An Azure SDK device client over MQTT/TLS, open, closed after the test. */
export async function sdkDevice(t: TestContext, gw: TestGateway, connectionString: string): Promise<Client> {
  const client = Client.fromConnectionString(connectionString, Mqtt);
  // spikes.md §2: setOptions is asynchronous and must finish before open().
  await client.setOptions({ ca: gw.caPem });
  await client.open();
  t.after(() => client.close().catch(() => undefined));
  return client;
}

export async function sdkModule(t: TestContext, gw: TestGateway, connectionString: string): Promise<ModuleClient> {
  const client = ModuleClient.fromConnectionString(connectionString, Mqtt);
  await client.setOptions({ ca: gw.caPem });
  await client.open();
  t.after(() => client.close().catch(() => undefined));
  return client;
}

/**
 * An Azure SDK device client over MQTT/WebSocket. The SDK always dials port 443 (spikes.md §5), so the
 * agent's createConnection sends it to the test gateway's HTTPS port instead.
 */
export async function sdkWsDevice(t: TestContext, gw: TestGateway, id: string, key: string): Promise<Client> {
  const cs = deviceConnectionString({ hub: gw.hubName, deviceId: id, key, gatewayHostName: "localhost" });
  const client = Client.fromConnectionString(cs, MqttWs);
  const agent = new https.Agent({ ca: gw.caPem });
  const port = gw.port("https");
  (agent as unknown as { createConnection: (o: tls.ConnectionOptions) => tls.TLSSocket }).createConnection = (o) =>
    tls.connect({ ...o, host: gw.address, servername: "localhost", port });
  await client.setOptions({ ca: gw.caPem, mqtt: { webSocketAgent: agent } } as never);
  await client.open();
  t.after(() => {
    agent.destroy();
    return client.close().catch(() => undefined);
  });
  return client;
}

/** A SAS token for `{hub}/devices/{d}[/modules/{m}]`, valid for `secs` (negative: already expired). */
export function sasToken(hub: string, id: string, key: string, secs = 3600): string {
  const [deviceId, moduleId] = id.split("/");
  const resource = moduleId ? `${hub}/devices/${deviceId}/modules/${moduleId}` : `${hub}/devices/${deviceId}`;
  return signSas({ resource, key, expirySecs: Math.floor(Date.now() / 1000) + secs });
}

/** Leases (and leaves leased) up to `n` messages of an endpoint queue, waiting until there are `n`. */
export async function takeFromQueue(gw: TestGateway, endpoint: string, n: number): Promise<Lease[]> {
  const queue = gw.gw.store.queue(endpoint);
  const got: Lease[] = [];
  while (got.length < n) {
    const leases = await queue.lease(n - got.length);
    got.push(...leases);
    if (got.length < n) await queue.waitAvailable(AbortSignal.timeout(20_000));
  }
  return got;
}

/**
 * A debug-level logger whose JSON lines a test can wait on: the event-driven way to know the head did
 * something the client cannot observe (a subscription took effect, a publish was refused).
 */
export function watchedLogger(): { logger: Logger; waitFor(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> } {
  const lines: Record<string, unknown>[] = [];
  const waiters: Array<{ match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];
  let partial = "";
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      partial += chunk.toString("utf8");
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        const text = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          continue;
        }
        lines.push(line);
        for (const w of [...waiters]) {
          if (w.match(line)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
      cb();
    },
  });
  const logger = pino({ level: "debug" }, sink);
  return {
    logger,
    waitFor(match) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

/** Waits until the head logged that `clientId` subscribed to `topic`. */
export function subscribed(log: ReturnType<typeof watchedLogger>, clientId: string, topic: string): Promise<unknown> {
  return log.waitFor((l) => l.msg === "mqtt subscribed" && l.clientId === clientId && Array.isArray(l.topics) && l.topics.includes(topic));
}

/**
 * The SDK scenarios every device head passes the same way (MQTT and AMQP): a message with IoT Hub's system and
 * application properties is in the `$upstream` queue with them once `sendEvent` resolved (the ack follows the
 * durable write), and a reported patch is in the hub's twin once the SDK's update resolved.
 */
export async function assertTelemetryWithProperties(gw: TestGateway, client: Client, deviceId: string): Promise<void> {
  const msg = new Message(JSON.stringify({ temp: 21 }));
  msg.messageId = "m-1";
  msg.correlationId = "c-1";
  msg.contentType = "application/json";
  msg.contentEncoding = "utf-8";
  msg.properties.add("alert", "a b&c=d");
  await client.sendEvent(msg);
  // 1. sendEvent resolved on the head's ack, so the message is already in the $upstream queue.
  const [lease] = await takeFromQueue(gw, "$upstream", 1);
  const m = lease!.message;
  assert.equal(m.source, deviceId);
  assert.equal(m.body.toString(), '{"temp":21}');
  assert.equal(m.systemProperties.messageId, "m-1");
  assert.equal(m.systemProperties.correlationId, "c-1");
  assert.equal(m.systemProperties.contentType, "application/json");
  assert.equal(m.systemProperties.contentEncoding, "utf-8");
  assert.equal(m.systemProperties.connectionDeviceId, deviceId);
  assert.deepEqual(m.properties, { alert: "a b&c=d" });
}

export async function assertTwinReported(gw: TestGateway, client: Client, deviceId: string): Promise<void> {
  const twin = await client.getTwin();
  assert.equal(typeof twin.properties.desired.$version, "number");
  await new Promise<void>((resolve, reject) =>
    twin.properties.reported.update({ firmware: "1.2.3" }, (err?: Error) => (err ? reject(err) : resolve())),
  );
  const stored = await gw.gw.hub.getTwin(deviceId);
  assert.equal(stored.properties.reported.firmware, "1.2.3");
}
