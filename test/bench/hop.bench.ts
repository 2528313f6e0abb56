/**
 * Bench `hop`: one child gateway forwarding to a root, QoS 1 telemetry, every hop durable — against a
 * mosquitto bridge (an edge mosquitto bridging `bench/#` at QoS 1 to a top mosquitto, cleansession false,
 * large queues) in the same run with the same load generator (MQTT.js, 256-byte payloads, ≤ window in flight
 * per device, as test/bench/mqtt.bench.ts). "Delivered" = reached a QoS 1 subscriber at the top: the top
 * mosquitto, or for Strata the mosquitto the root's mqtt-sink publishes to. Reports acked/s, delivered/s,
 * lost (acknowledged, never delivered), end-to-end p50/p99 and the ratio. The gateways are real `strata start`
 * processes on 127.77.9.x with the standard ports (root needed for 443), see test/support/tree.ts.
 *
 *   node dist/test/bench/run.js hop [--seconds 10] [--devices 20] [--window 100] [--only mosquitto,strata]
 */
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { signSas } from "../../core/identity/sas.js";
import { startMosquitto } from "../support/mosquitto.js";
import { buildTree, treeUnavailable } from "../support/tree.js";
import { PAYLOAD_BYTES, arg, payload, percentile } from "./common.js";

interface Options { seconds: number; devices: number; window: number; only: string[] }
interface Target {
  name: string;
  publisher(i: number): { url: string; options: IClientOptions; topic: string };
  subscribeUrl: string;
  subscribeTopic: string;
}
interface Result {
  target: string; acked: number; delivered: number; lost: number;
  ackedPerSec: number; deliveredPerSec: number; p50: number; p99: number;
}

async function runLoad(target: Target, o: Options): Promise<Result> {
  const acked = new Set<string>();
  const delivered = new Set<string>();
  const latencies: number[] = [];
  let lastDelivery = 0;
  let lastAck = 0;
  let onDelivery = () => {};
  const sub = await mqtt.connectAsync(target.subscribeUrl, { clean: true, protocolVersion: 5, reconnectPeriod: 0, clientId: `hop-sub-${process.pid}` });
  sub.on("message", (_t, body) => {
    const text = body.toString("latin1", 0, 64);
    const [d, s, sentAt] = text.split(":");
    const id = `${d}:${s}`;
    if (delivered.has(id)) return;
    delivered.add(id);
    lastDelivery = performance.now();
    latencies.push(lastDelivery - Number(sentAt));
    onDelivery();
  });
  await sub.subscribeAsync(target.subscribeTopic, { qos: 1 });
  const clients: MqttClient[] = await Promise.all(Array.from({ length: o.devices }, (_, i) => {
    const p = target.publisher(i);
    return mqtt.connectAsync(p.url, { reconnectPeriod: 0, ...p.options });
  }));
  // Once per device: a Strata publisher signs a SAS token, which must not be paid per message.
  const topics = clients.map((_, i) => target.publisher(i).topic);
  const started = performance.now();
  const end = started + o.seconds * 1000;
  const inflight = new Array<number>(o.devices).fill(0);
  const sent = new Array<number>(o.devices).fill(0);
  let pending = 0;
  let allAcked = () => {};
  const publishOne = (i: number) => {
    const seq = sent[i]!++;
    inflight[i]!++;
    pending++;
    clients[i]!.publish(topics[i]!, payload(i, seq), { qos: 1 }, (err) => {
      inflight[i]!--;
      pending--;
      if (!err) {
        acked.add(`${i}:${seq}`);
        lastAck = performance.now();
      }
      pump(i);
      if (pending === 0) allAcked();
    });
  };
  const pump = (i: number) => {
    while (inflight[i]! < o.window && performance.now() < end) publishOne(i);
  };
  for (let i = 0; i < o.devices; i++) pump(i);
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  if (pending > 0) await Promise.race([new Promise<void>((r) => (allAcked = r)), new Promise((r) => setTimeout(r, 10_000))]);
  // Deliveries: every acknowledged message, or 10 s without progress.
  await new Promise<void>((resolve) => {
    let idle = setTimeout(resolve, 10_000);
    const check = () => {
      clearTimeout(idle);
      if ([...acked].every((id) => delivered.has(id))) return resolve();
      idle = setTimeout(resolve, 10_000);
    };
    onDelivery = () => { if (delivered.size >= acked.size) check(); else { clearTimeout(idle); idle = setTimeout(resolve, 10_000); } };
    check();
  });
  onDelivery = () => {};
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await sub.endAsync(true);
  let lost = 0;
  for (const id of acked) if (!delivered.has(id)) lost++;
  return {
    target: target.name, acked: acked.size, delivered: delivered.size, lost,
    ackedPerSec: acked.size / ((lastAck - started) / 1000 || 1),
    deliveredPerSec: delivered.size / ((lastDelivery - started) / 1000 || 1),
    p50: percentile(latencies, 50), p99: percentile(latencies, 99),
  };
}

async function mosquittoBridge(o: Options): Promise<Result> {
  const top = await startMosquitto(undefined, { maxQueuedMessages: 0, maxInflightMessages: 0, tcpNoDelay: true });
  const edge = await startMosquitto(undefined, {
    maxQueuedMessages: 10_000_000, tcpNoDelay: true,
    extraConfig: [
      "connection up", `address ${top.host}:${top.port}`, "topic bench/# out 1", "cleansession false",
      "bridge_protocol_version mqttv311", "max_queued_messages 10000000",
    ],
  });
  try {
    return await runLoad({
      name: "mosquitto bridge",
      publisher: (i) => ({ url: edge.url, options: { clientId: `hop-${i}`, clean: true }, topic: `bench/${i}` }),
      subscribeUrl: top.url,
      subscribeTopic: "bench/#",
    }, o);
  } finally {
    await edge.close();
    await top.close();
  }
}

async function strataHop(o: Options): Promise<Result> {
  const why = treeUnavailable();
  if (why) throw new Error(`strata hop: ${why}`);
  const sink = await startMosquitto(undefined, { maxQueuedMessages: 0, maxInflightMessages: 0, tcpNoDelay: true });
  const devices = Array.from({ length: o.devices }, (_, i) => ({ id: `hop-${i}`, gateway: "child" }));
  const tree = await buildTree({
    subnet: "127.77.9",
    gateways: [
      { id: "root", plugins: { "mqtt-sink": { url: sink.url }, root: { telemetry_log: { enabled: false } } } },
      { id: "child", parent: "root" },
    ],
    leaves: devices,
  });
  try {
    const root = tree.root;
    await root.start();
    const child = tree.gw("child");
    await child.start();
    await child.waitUpstream();
    return await runLoad({
      name: "strata hop",
      publisher: (i) => ({
        url: `mqtts://${child.address}:8883`,
        options: {
          clientId: devices[i]!.id, clean: true, protocolVersion: 4, ca: tree.caPem,
          username: `${tree.hub}/${devices[i]!.id}/?api-version=2021-04-12`,
          password: signSas({ resource: `${tree.hub}/devices/${devices[i]!.id}`, key: tree.keys.get(devices[i]!.id)!, expirySecs: Math.floor(Date.now() / 1000) + 3600 }),
        },
        topic: `devices/${devices[i]!.id}/messages/events/`,
      }),
      subscribeUrl: sink.url,
      subscribeTopic: "strata/#",
    }, o);
  } finally {
    await tree.cleanup();
    await sink.close();
  }
}

function fmt(r: Result): string {
  return `| ${r.target} | ${Math.round(r.ackedPerSec)} | ${Math.round(r.deliveredPerSec)} | ${r.lost} of ${r.acked} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`;
}

export async function run(args: string[]): Promise<void> {
  const o: Options = {
    seconds: Number(arg(args, "seconds", "10")),
    devices: Number(arg(args, "devices", "20")),
    window: Number(arg(args, "window", "100")),
    only: arg(args, "only", "mosquitto,strata").split(","),
  };
  const results: Result[] = [];
  if (o.only.includes("mosquitto")) results.push(await mosquittoBridge(o));
  if (o.only.includes("strata")) results.push(await strataHop(o));
  const lines = [
    `hop bench: ${o.devices} devices, QoS 1, ${PAYLOAD_BYTES}-byte payloads, ≤ ${o.window} in flight each, ${o.seconds} s`,
    "", "| target | acked/s | delivered/s | lost | e2e p50 ms | e2e p99 ms |", "| --- | --- | --- | --- | --- | --- |",
    ...results.map(fmt),
  ];
  const s = results.find((r) => r.target === "strata hop");
  const m = results.find((r) => r.target === "mosquitto bridge");
  if (s && m) lines.push("", `strata / mosquitto bridge: delivered/s ×${(s.deliveredPerSec / m.deliveredPerSec).toFixed(2)}, acked/s ×${(s.ackedPerSec / m.ackedPerSec).toFixed(2)}`);
  process.stdout.write(lines.join("\n") + "\n" + `json ${JSON.stringify(results)}\n`);
}
