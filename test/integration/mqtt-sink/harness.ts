import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import {
  Drain, LevelStore, silentLogger,
  type EndpointConsumer, type Hub, type Lease, type Logger, type Message, type StrataConfig,
} from "../../../core/index.js";
import { mqttSinkConfigSchema, MqttSinkPlugin, type MqttSinkConfig } from "../../../plugins/mqtt-sink/index.js";
import type { AfterHook } from "../../support/mosquitto.js";

/**
 * The mqtt-sink plugin on core's real durable queue and drain loop (LevelStore + Drain), without the rest
 * of a gateway: the parts a sink meets. `enqueue` puts messages on the sink's queue as the hub would.
 */
export interface SinkRig {
  plugin: MqttSinkPlugin;
  store: LevelStore;
  endpoint: string;
  enqueue(count: number, make?: (i: number) => Partial<Message>): Promise<Message[]>;
  /** Messages still queued for the sink (leased ones included). */
  depth(): number;
}

export async function startSinkRig(t: AfterHook, settings: Partial<MqttSinkConfig>): Promise<SinkRig> {
  const dir = mkdtempSync(join(tmpdir(), "strata-sink-"));
  const logger = silentLogger();
  const store = new LevelStore({ path: join(dir, "store"), gatewayId: "root", quotaBytes: 256 * 1024 ** 2, logger, sweepIntervalMs: 0 });
  await store.open();
  const drains: Drain[] = [];
  const sinks: string[] = [];
  const hub: Partial<Hub> = {
    addSink: (name) => void sinks.push(name),
    consume(endpoint: string, consumer: EndpointConsumer) {
      const drain = new Drain({
        queue: store.queue(endpoint),
        deliver: (leases, signal) => consumer.deliver(leases, signal),
        batchSize: consumer.batchSize ?? 100,
        logger,
        minBackoffMs: 20,
        maxBackoffMs: 200,
      });
      drains.push(drain);
      drain.start();
      return () => void drain.stop();
    },
  };
  const config = { hub: "testhub", device_id: "root" } as StrataConfig;
  const parsed = mqttSinkConfigSchema.parse(settings);
  const plugin = new MqttSinkPlugin(hub as Hub, config, parsed, logger);
  await plugin.start();
  const endpoint = `sink:${parsed.name}`;
  t.after(async () => {
    await plugin.stop();
    await Promise.all(drains.map((d) => d.stop()));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let seq = 0;
  return {
    plugin,
    store,
    endpoint,
    depth: () => store.queue(endpoint).depth(),
    async enqueue(count, make = () => ({})) {
      const out: Message[] = [];
      for (let i = 0; i < count; i++) {
        const n = seq++;
        const now = Date.now();
        out.push({
          id: store.nextId(), origin: "root", source: "d1", enqueuedTime: now, deadline: now + 3_600_000, priority: 0,
          body: Buffer.from(`{"n":${n}}`), properties: { n: String(n) }, systemProperties: { messageId: `m-${n}` },
          ...make(n),
        });
      }
      await Promise.all(out.map((m) => store.enqueue(m, [endpoint])));
      return out;
    },
  };
}

/** A received publish. */
export interface Received {
  topic: string;
  payload: Buffer;
  userProperties: Record<string, string | string[]>;
  contentType?: string;
}

/**
 * An MQTT 5 subscriber at QoS 1 with a persistent session (clean=false, fixed client id), so that what a
 * persistent broker queued for it across a restart is delivered; reconnects on its own.
 */
export interface Subscriber {
  client: MqttClient;
  received: Received[];
  /** Distinct Strata ids received (the `strata-id` user property): duplicates of at-least-once count once. */
  ids: Set<string>;
  /** Resolves once `n` distinct messages have arrived. */
  waitFor(n: number): Promise<void>;
}

export async function subscriber(t: AfterHook, url: string, topic: string, extra: IClientOptions = {}): Promise<Subscriber> {
  const received: Received[] = [];
  const ids = new Set<string>();
  const waiters: { n: number; resolve: () => void }[] = [];
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5, clientId: `sub-${process.pid}-${Math.random().toString(36).slice(2)}`, clean: false,
    properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 100, ...extra,
  });
  t.after(() => client.endAsync(true));
  client.on("error", () => {});
  client.on("message", (topic, payload, packet) => {
    received.push({
      topic, payload,
      userProperties: (packet.properties?.userProperties ?? {}) as Record<string, string | string[]>,
      ...(packet.properties?.contentType ? { contentType: packet.properties.contentType } : {}),
    });
    const id = packet.properties?.userProperties?.["strata-id"];
    if (typeof id === "string") ids.add(id);
    for (const w of [...waiters]) if (ids.size >= w.n) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  await client.subscribeAsync(topic, { qos: 1 });
  return {
    client,
    received,
    ids,
    waitFor: (n) => (ids.size >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

/** The plugin with a hub that runs no drain: the test calls `deliver` itself with hand-made leases. */
export async function directSink(t: AfterHook, settings: Partial<MqttSinkConfig>, logger: Logger = silentLogger()): Promise<MqttSinkPlugin> {
  const hub: Partial<Hub> = { addSink: () => {}, consume: () => () => {} };
  const config = { hub: "testhub", device_id: "root" } as StrataConfig;
  const plugin = new MqttSinkPlugin(hub as Hub, config, mqttSinkConfigSchema.parse(settings), logger);
  await plugin.start();
  t.after(() => plugin.stop());
  return plugin;
}

export function leases(count: number): Lease[] {
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => ({
    endpoint: "sink:mqtt",
    attempts: 0,
    message: {
      id: `root:${i + 1}`, origin: "root", source: "d1", enqueuedTime: now, deadline: now + 60_000, priority: 0,
      body: Buffer.from(`m${i}`), properties: {}, systemProperties: { messageId: `m-${i}` },
    },
  }));
}
