/**
 * Bench `chain`: a 5-gateway Strata chain (root ← gw1 ← gw2 ← gw3 ← gw4, real `strata start` processes on
 * 127.77.23.x, every hop durable) against a 5-level mosquitto bridge chain (each broker bridging `bench/#` at
 * QoS 1 to the one above, cleansession false), with mosquitto's default queues and with large queues — in the
 * same run, with the same load generator as test/bench/mqtt.bench.ts (MQTT.js publishers at the bottom,
 * 256-byte payloads carrying `device:seq:sentAt`, ≤ window in flight per device; at full speed, and at a fixed
 * offered rate). "Delivered" = reached a QoS 1 subscriber at the top: the top mosquitto, or for Strata the
 * mosquitto the root's mqtt-sink publishes to. Reports acked/s, delivered/s, lost (acknowledged, never
 * delivered), end-to-end p50/p99, the ratios, CPU-seconds per message of each Strata gateway
 * (/proc/<pid>/stat), and the drain rate of a backlog: built at gw1 with the root stopped, timed from the
 * moment gw1's link to the restarted root is up until the last message reached the top.
 *
 *   node dist/test/bench/run.js chain [--seconds 10] [--devices 20] [--window 100] [--rate 5000]
 *                                     [--repeat 1] [--backlog 50000] [--only mosquitto,mosquitto-large,strata,drain]
 *   (`--backlog 1000000` for the full-size drain; needs root for port 443, like test/support/tree.ts.)
 */
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { signSas } from "../../core/identity/sas.js";
import { cpuSeconds } from "../support/chaos.js";
import { startMosquitto, type Mosquitto } from "../support/mosquitto.js";
import { buildTree, treeUnavailable, type Tree } from "../support/tree.js";
import { PAYLOAD_BYTES, arg, payload, percentile } from "./common.js";

const LEVELS = 5;
const CHAIN = ["root", "gw1", "gw2", "gw3", "gw4"];

interface Options {
  seconds: number;
  devices: number;
  window: number;
  rate: number;
  repeat: number;
  backlog: number;
  only: string[];
}

interface Target {
  name: string;
  publisher(i: number): { url: string; options: IClientOptions; topic: string };
  subscribeUrl: string;
  subscribeTopic: string;
}

interface RunResult {
  target: string;
  mode: "max" | "rate";
  offeredPerSec?: number;
  acked: number;
  delivered: number;
  lost: number;
  ackedPerSec: number;
  deliveredPerSec: number;
  p50: number;
  p99: number;
  /** Strata only: CPU-seconds per delivered message, per gateway (root first). */
  cpuPerMessage?: Record<string, number>;
}

/** The subscriber at the top: unique deliveries and their end-to-end latencies. */
async function topSubscriber(target: Target) {
  const delivered = new Set<string>();
  const latencies: number[] = [];
  let lastDelivery = 0;
  let onDelivery: () => void = () => {};
  const sub = await mqtt.connectAsync(target.subscribeUrl, { clean: true, protocolVersion: 5, reconnectPeriod: 0, clientId: `chain-sub-${process.pid}` });
  sub.on("message", (_topic, body) => {
    const [d, s, sentAt] = body.toString("latin1", 0, 64).split(":");
    const id = `${d}:${s}`;
    if (delivered.has(id)) return;
    delivered.add(id);
    lastDelivery = performance.now();
    latencies.push(lastDelivery - Number(sentAt));
    onDelivery();
  });
  await sub.subscribeAsync(target.subscribeTopic, { qos: 1 });
  return {
    delivered,
    latencies,
    get lastDelivery() { return lastDelivery; },
    /** Resolves when every id in `acked` was delivered, or after `idleMs` without a new delivery. */
    settle(acked: ReadonlySet<string>, idleMs: number): Promise<void> {
      return new Promise((resolve) => {
        let idle = setTimeout(finish, idleMs);
        let missing = [...acked].filter((id) => !delivered.has(id)).length;
        function finish() {
          onDelivery = () => {};
          clearTimeout(idle);
          resolve();
        }
        if (missing === 0) return finish();
        onDelivery = () => {
          missing--;
          clearTimeout(idle);
          if (missing <= 0) {
            missing = [...acked].filter((id) => !delivered.has(id)).length;
            if (missing === 0) return finish();
          }
          idle = setTimeout(finish, idleMs);
        };
      });
    },
    close: () => sub.endAsync(true),
  };
}

/** The load generator of mqtt.bench.ts: as fast as the window allows, or `rate` msg/s in all; then drain and count. */
async function runLoad(target: Target, o: Options, rate?: number): Promise<RunResult> {
  const sub = await topSubscriber(target);
  const acked = new Set<string>();
  let lastAck = 0;
  const clients: MqttClient[] = await Promise.all(Array.from({ length: o.devices }, (_, i) => {
    const p = target.publisher(i);
    return mqtt.connectAsync(p.url, { reconnectPeriod: 0, ...p.options });
  }));
  // Once per device: a Strata publisher signs a SAS token, which must not be paid per message.
  const topics = clients.map((_, i) => target.publisher(i).topic);
  const started = performance.now();
  const end = started + o.seconds * 1000;
  const perClientRate = rate ? rate / o.devices : 0;
  const inflight = new Array<number>(o.devices).fill(0);
  const sent = new Array<number>(o.devices).fill(0);
  let pendingAcks = 0;
  let allAcked: () => void = () => {};
  const publishOne = (i: number) => {
    const seq = sent[i]!++;
    inflight[i]!++;
    pendingAcks++;
    clients[i]!.publish(topics[i]!, payload(i, seq), { qos: 1 }, (err) => {
      inflight[i]!--;
      pendingAcks--;
      if (!err) {
        acked.add(`${i}:${seq}`);
        lastAck = performance.now();
      }
      if (!rate) pump(i);
      if (pendingAcks === 0) allAcked();
    });
  };
  const pump = (i: number) => {
    while (inflight[i]! < o.window && performance.now() < end) publishOne(i);
  };
  let ticker: NodeJS.Timeout | undefined;
  if (rate) {
    ticker = setInterval(() => {
      const now = performance.now();
      if (now >= end) return;
      const due = Math.floor(((now - started) / 1000) * perClientRate);
      for (let i = 0; i < o.devices; i++) while (sent[i]! < due && inflight[i]! < o.window) publishOne(i);
    }, 2);
  } else {
    for (let i = 0; i < o.devices; i++) pump(i);
  }
  await new Promise<void>((resolve) => setTimeout(resolve, o.seconds * 1000));
  clearInterval(ticker);
  if (pendingAcks > 0) await Promise.race([new Promise<void>((r) => (allAcked = r)), new Promise((r) => setTimeout(r, 10_000))]);
  // Deliveries: every acknowledged message, or 10 s without progress (a chain of queues needs the longer idle).
  await sub.settle(acked, 10_000);
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await sub.close();
  let lost = 0;
  for (const id of acked) if (!sub.delivered.has(id)) lost++;
  return {
    target: target.name,
    mode: rate ? "rate" : "max",
    ...(rate ? { offeredPerSec: rate } : {}),
    acked: acked.size,
    delivered: sub.delivered.size,
    lost,
    ackedPerSec: acked.size / ((lastAck - started) / 1000 || 1),
    deliveredPerSec: sub.delivered.size / ((sub.lastDelivery - started) / 1000 || 1),
    p50: percentile(sub.latencies, 50),
    p99: percentile(sub.latencies, 99),
  };
}

// ---- mosquitto: five brokers, each bridging up to the next ----------------------------------------------

async function mosquittoChain(large: boolean): Promise<{ target: Target; close(): Promise<void> }> {
  const queues = large ? { maxQueuedMessages: 10_000_000 } : {};
  const brokers: Mosquitto[] = [];
  try {
    brokers.push(await startMosquitto(undefined, { ...queues, tcpNoDelay: true }));
    for (let level = 1; level < LEVELS; level++) {
      const above = brokers[level - 1]!;
      brokers.push(await startMosquitto(undefined, {
        ...queues, tcpNoDelay: true,
        extraConfig: [
          `connection up${level}`, `address ${above.host}:${above.port}`, "topic bench/# out 1", "cleansession false",
          "bridge_protocol_version mqttv311", "restart_timeout 1",
        ],
      }));
    }
  } catch (err) {
    for (const b of brokers.reverse()) await b.close();
    throw err;
  }
  const top = brokers[0]!;
  const edge = brokers.at(-1)!;
  return {
    target: {
      name: large ? "mosquitto chain, large queues" : "mosquitto chain, default queues",
      publisher: (i) => ({ url: edge.url, options: { clientId: `chain-${i}`, clean: true }, topic: `bench/${i}` }),
      subscribeUrl: top.url,
      subscribeTopic: "bench/#",
    },
    close: async () => {
      for (const b of brokers.reverse()) await b.close();
    },
  };
}

// ---- Strata: five gateways --------------------------------------------------------------------------

async function strataChain(o: Options, sink: Mosquitto): Promise<{ tree: Tree; target: Target }> {
  const why = treeUnavailable();
  if (why) throw new Error(`strata chain: ${why}`);
  const devices = Array.from({ length: o.devices }, (_, i) => ({ id: `chain-${i}`, gateway: "gw4" }));
  const tree = await buildTree({
    subnet: "127.77.23",
    gateways: CHAIN.map((id, i) => (i === 0
      ? { id, plugins: { "mqtt-sink": { url: sink.url }, root: { telemetry_log: { enabled: false } } } }
      : { id, parent: CHAIN[i - 1]! })),
    leaves: devices,
  });
  try {
    await tree.startAll();
  } catch (err) {
    await tree.cleanup();
    throw err;
  }
  const bottom = tree.gw("gw4");
  return {
    tree,
    target: {
      name: "strata chain",
      publisher: (i) => ({
        url: `mqtts://${bottom.address}:8883`,
        options: {
          clientId: devices[i]!.id, clean: true, protocolVersion: 4, ca: tree.caPem,
          username: `${tree.hub}/${devices[i]!.id}/?api-version=2021-04-12`,
          password: signSas({ resource: `${tree.hub}/devices/${devices[i]!.id}`, key: tree.keys.get(devices[i]!.id)!, expirySecs: Math.floor(Date.now() / 1000) + 3600 }),
        },
        topic: `devices/${devices[i]!.id}/messages/events/`,
      }),
      subscribeUrl: sink.url,
      subscribeTopic: "strata/#",
    },
  };
}

function gatewayCpu(tree: Tree): Record<string, number> {
  return Object.fromEntries(CHAIN.map((id) => [id, cpuSeconds(tree.gw(id).proc!.pid!)]));
}

/** One Strata run: a fresh chain (nothing queued from a previous run), CPU read around the load. */
async function strataRun(o: Options, rate?: number): Promise<RunResult> {
  const sink = await startMosquitto(undefined, { maxQueuedMessages: 0, maxInflightMessages: 0, tcpNoDelay: true });
  try {
    const { tree, target } = await strataChain(o, sink);
    try {
      const before = gatewayCpu(tree);
      const r = await runLoad(target, o, rate);
      const after = gatewayCpu(tree);
      r.cpuPerMessage = Object.fromEntries(CHAIN.map((id) => [id, (after[id]! - before[id]!) / (r.delivered || 1)]));
      return r;
    } finally {
      await tree.cleanup();
    }
  } finally {
    await sink.close();
  }
}

interface DrainResult {
  target: string;
  backlog: number;
  ackedPerSec: number;
  /** Seconds from gw1's link to the restarted root being up until the last message reached the top. */
  drainSeconds: number;
  drainPerSec: number;
  lost: number;
  cpuPerMessage: Record<string, number>;
}

/** Resolves when the processes' CPU use stayed under 2% of a core for a second: the backlog has moved down the chain. */
async function quiet(pids: number[]): Promise<void> {
  const total = () => pids.reduce((s, pid) => s + cpuSeconds(pid), 0);
  let last = total();
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = total();
    if (now - last < 0.02 * pids.length) return;
    last = now;
  }
}

/** Backlog drain: root stopped, `backlog` messages acknowledged at gw4 and moved to gw1; root restarted, timed. */
async function strataDrain(o: Options): Promise<DrainResult> {
  const sink = await startMosquitto(undefined, { maxQueuedMessages: 0, maxInflightMessages: 0, tcpNoDelay: true });
  const { tree, target } = await strataChain(o, sink);
  try {
    const sub = await topSubscriber(target);
    // 1. Root down; the leaves publish the backlog at full speed (acknowledged at gw4, forwarded down to gw1).
    const gw1 = tree.gw("gw1");
    await tree.root.stop();
    const clients = await Promise.all(Array.from({ length: o.devices }, (_, i) => {
      const p = target.publisher(i);
      return mqtt.connectAsync(p.url, { reconnectPeriod: 0, ...p.options });
    }));
    const acked = new Set<string>();
    const topics = clients.map((_, i) => target.publisher(i).topic);
    const perDevice = Math.ceil(o.backlog / o.devices);
    const started = performance.now();
    await Promise.all(clients.map(async (c, i) => {
      let next = 0;
      const worker = async () => {
        while (next < perDevice) {
          const seq = next++;
          await c.publishAsync(topics[i]!, payload(i, seq), { qos: 1 });
          acked.add(`${i}:${seq}`);
        }
      };
      await Promise.all(Array.from({ length: o.window }, worker));
    }));
    const ackedPerSec = acked.size / ((performance.now() - started) / 1000);
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await quiet(CHAIN.slice(1).map((id) => tree.gw(id).proc!.pid!));
    process.stderr.write(`  backlog of ${acked.size} acknowledged at ${Math.round(ackedPerSec)}/s and moved to gw1\n`);
    // 2. Root back: timed from gw1's upstream link being up to the last delivery at the top.
    const mark = gw1.lines.length;
    await tree.root.start();
    await gw1.waitUpstream(60_000, mark);
    const before = gatewayCpu(tree);
    const t0 = performance.now();
    await sub.settle(acked, 20_000);
    const drainSeconds = (sub.lastDelivery - t0) / 1000;
    const after = gatewayCpu(tree);
    await sub.close();
    let lost = 0;
    for (const id of acked) if (!sub.delivered.has(id)) lost++;
    return {
      target: "strata chain (gw1 → root)", backlog: acked.size, ackedPerSec, drainSeconds,
      drainPerSec: sub.delivered.size / drainSeconds, lost,
      cpuPerMessage: Object.fromEntries(CHAIN.slice(0, 2).map((id) => [id, (after[id]! - before[id]!) / (sub.delivered.size || 1)])),
    };
  } finally {
    await tree.cleanup();
    await sink.close();
  }
}

// ---- report ------------------------------------------------------------------------------------------

function fmt(r: RunResult): string {
  const lostPct = r.acked ? ((100 * r.lost) / r.acked).toFixed(1) : "0";
  return `acked ${r.acked} (${Math.round(r.ackedPerSec)}/s), delivered ${r.delivered} (${Math.round(r.deliveredPerSec)}/s), ` +
    `lost ${r.lost} (${lostPct}%), e2e p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms`;
}

function medianOf(runs: RunResult[]): RunResult {
  const m = (f: (r: RunResult) => number) => percentile(runs.map(f), 50);
  const cpu = runs[0]!.cpuPerMessage
    ? Object.fromEntries(Object.keys(runs[0]!.cpuPerMessage).map((id) => [id, m((r) => r.cpuPerMessage![id]!)]))
    : undefined;
  return {
    ...runs[0]!,
    acked: m((r) => r.acked), delivered: m((r) => r.delivered), lost: m((r) => r.lost),
    ackedPerSec: m((r) => r.ackedPerSec), deliveredPerSec: m((r) => r.deliveredPerSec),
    p50: m((r) => r.p50), p99: m((r) => r.p99),
    ...(cpu ? { cpuPerMessage: cpu } : {}),
  };
}

async function measure(name: string, once: (rate?: number) => Promise<RunResult>, o: Options): Promise<RunResult[]> {
  const out: RunResult[] = [];
  for (const rate of [undefined, o.rate]) {
    const runs: RunResult[] = [];
    for (let r = 0; r < o.repeat; r++) {
      runs.push(await once(rate));
      process.stderr.write(`  ${name} ${rate ? `${rate}/s` : "max"} run ${r + 1}: ${fmt(runs.at(-1)!)}\n`);
    }
    out.push(medianOf(runs));
  }
  return out;
}

export async function run(args: string[]): Promise<void> {
  const o: Options = {
    seconds: Number(arg(args, "seconds", "10")),
    devices: Number(arg(args, "devices", "20")),
    window: Number(arg(args, "window", "100")),
    rate: Number(arg(args, "rate", "5000")),
    repeat: Number(arg(args, "repeat", "1")),
    backlog: Number(arg(args, "backlog", "50000")),
    only: arg(args, "only", "mosquitto,mosquitto-large,strata,drain").split(","),
  };
  const results: RunResult[] = [];
  for (const large of [false, true]) {
    if (!o.only.includes(large ? "mosquitto-large" : "mosquitto")) continue;
    const name = large ? "mosquitto chain (max_queued_messages 10000000)" : "mosquitto chain (defaults)";
    process.stderr.write(`${name}\n`);
    results.push(...await measure(name, async (rate) => {
      const chain = await mosquittoChain(large);
      try {
        return await runLoad(chain.target, o, rate);
      } finally {
        await chain.close();
      }
    }, o));
  }
  if (o.only.includes("strata")) {
    process.stderr.write("strata chain (5 gateways, MQTT head at the bottom, mqtt-sink at the root)\n");
    results.push(...await measure("strata chain", (rate) => strataRun(o, rate), o));
  }
  let drain: DrainResult | undefined;
  if (o.only.includes("drain")) {
    process.stderr.write(`strata backlog drain (${o.backlog} messages)\n`);
    drain = await strataDrain(o);
  }

  const row = (r: RunResult) =>
    `| ${r.target} | ${r.mode === "rate" ? `${r.offeredPerSec}/s` : "max"} | ${Math.round(r.ackedPerSec)} | ${Math.round(r.deliveredPerSec)} | ` +
    `${r.lost} of ${r.acked} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`;
  const lines = [
    `chain bench: ${LEVELS} levels, ${o.devices} devices at the bottom, QoS 1, ${PAYLOAD_BYTES}-byte payloads, ≤ ${o.window} in flight each, ` +
      `${o.seconds} s per run${o.repeat > 1 ? `, medians of ${o.repeat}` : ""}`,
    "",
    "| target | offered | acked/s | delivered/s | lost | e2e p50 ms | e2e p99 ms |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...results.map(row),
  ];
  const strata = results.find((r) => r.target === "strata chain" && r.mode === "max");
  for (const base of results.filter((r) => r.target !== "strata chain" && r.mode === "max")) {
    if (strata) {
      lines.push("", `strata chain / ${base.target}: delivered/s ×${(strata.deliveredPerSec / base.deliveredPerSec).toFixed(2)}, ` +
        `acked/s ×${(strata.ackedPerSec / base.ackedPerSec).toFixed(2)}`);
    }
  }
  for (const r of results.filter((x) => x.cpuPerMessage)) {
    lines.push("", `strata CPU per delivered message (${r.mode === "rate" ? `${r.offeredPerSec}/s` : "max"}): ` +
      Object.entries(r.cpuPerMessage!).map(([id, s]) => `${id} ${(s * 1e6).toFixed(0)} µs`).join(", "));
  }
  if (drain) {
    lines.push("", `backlog drain: ${drain.backlog} messages (acknowledged at ${Math.round(drain.ackedPerSec)}/s with the root down) ` +
      `drained gw1 → root → top in ${drain.drainSeconds.toFixed(1)} s = ${Math.round(drain.drainPerSec)} msg/s, lost ${drain.lost}; ` +
      `CPU per message ${Object.entries(drain.cpuPerMessage).map(([id, s]) => `${id} ${(s * 1e6).toFixed(0)} µs`).join(", ")}`);
  }
  process.stdout.write(lines.join("\n") + "\n" + `json ${JSON.stringify({ results, drain })}\n`);
}
