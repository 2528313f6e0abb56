/**
 * Bench `mqtt`: one load generator (MQTT.js clients publishing QoS 1, 256-byte telemetry, ≤ 100 in flight
 * each) against (a) a real mosquitto with its defaults, (b) mosquitto with a large `max_queued_messages`,
 * each drained by one QoS 1 subscriber, and (c) a Strata root gateway (MQTT head over TLS, SAS auth),
 * where "delivered" means it left through the northbound mqtt-sink and reached a subscriber of the sink's
 * broker (a mosquitto with unlimited queues and in-flight window and TCP_NODELAY, so that hop neither loses
 * nor throttles on its own). Per target: acked/s,
 * delivered/s, lost (acknowledged to the publisher but never delivered), end-to-end p50/p99, and at a fixed
 * offered rate the same latencies. The gateway runs in a child process so it does not share the load
 * generator's event loop.
 *
 *   node dist/test/bench/run.js mqtt [--seconds 10] [--warmup 2] [--devices 20] [--window 100] [--rate 5000]
 *                                    [--repeat 3] [--only mosquitto,mosquitto-large,strata] [--modes max,rate] [--modes max,rate]
 *   STRATA_BENCH_PROF=<dir> writes a CPU profile of the gateway process there; STRATA_GATEWAY_NODE_ARGS adds
 *   node flags to the gateway process (e.g. "--trace-gc").
 */
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { signSas } from "../../core/index.js";
import { startMosquitto, type Mosquitto } from "../support/mosquitto.js";
import { gatewayNodeArgs } from "../support/tree.js";
import { PAYLOAD_BYTES, arg, payload, percentile } from "./common.js";

interface Options {
  seconds: number;
  /**
   * Seconds at the start of each run whose messages count for throughput and loss but not for the steady
   * latencies (p50/p99): a JIT runtime compiles its hot paths then, a broker in C does not need to. The same
   * for every target; their latencies are reported apart as the warm-up p99.
   */
  warmup: number;
  devices: number;
  window: number;
  rate: number;
  repeat: number;
  only: string[];
  /** "max" (as fast as acks allow) and/or "rate" (--rate offered). */
  modes: string[];
}

interface Target {
  name: string;
  /** Where the load generator publishes, per device. */
  publisher(i: number): { url: string; options: IClientOptions; topic: string };
  /** Where the one subscriber reads what was delivered. */
  subscribeUrl: string;
  subscribeTopic: string;
}

interface RunResult {
  target: string;
  mode: "max" | "rate";
  offeredPerSec?: number;
  published: number;
  acked: number;
  delivered: number;
  lost: number;
  ackedPerSec: number;
  deliveredPerSec: number;
  p50: number;
  p99: number;
  ackP99: number;
  /** e2e p99 of the messages sent during the warm-up. */
  warmupP99: number;
}

function median(values: number[]): number {
  return percentile(values, 50);
}

/** One run: connect, publish for `seconds` (as fast as the window allows, or at `rate` msg/s in all), drain, count. */
async function runLoad(target: Target, o: Options, rate?: number): Promise<RunResult> {
  const acked = new Set<string>();
  const delivered = new Set<string>();
  const latencies: number[] = [];
  const warmupLatencies: number[] = [];
  const ackLatencies: number[] = [];
  let lastDelivery = 0;
  let lastAck = 0;
  let onDelivery: () => void = () => {};
  let steadyFrom = Infinity;

  const sub = await mqtt.connectAsync(target.subscribeUrl, { clean: true, protocolVersion: 5, reconnectPeriod: 0, clientId: `bench-sub-${process.pid}` });
  sub.on("message", (_topic, body) => {
    const text = body.toString("latin1", 0, 64);
    const [d, s, sentAt] = text.split(":");
    const id = `${d}:${s}`;
    if (delivered.has(id)) return;
    delivered.add(id);
    const now = performance.now();
    (Number(sentAt) < steadyFrom ? warmupLatencies : latencies).push(now - Number(sentAt));
    lastDelivery = now;
    onDelivery();
  });
  await sub.subscribeAsync(target.subscribeTopic, { qos: 1 });

  const clients: MqttClient[] = await Promise.all(Array.from({ length: o.devices }, (_, i) => {
    const p = target.publisher(i);
    return mqtt.connectAsync(p.url, { reconnectPeriod: 0, ...p.options });
  }));
  // Once per device: a Strata publisher signs a SAS token, which must not be paid per message.
  const topics = clients.map((_, i) => target.publisher(i).topic);
  let published = 0;
  const started = performance.now();
  const end = started + (o.warmup + o.seconds) * 1000;
  steadyFrom = started + o.warmup * 1000;
  const perClientRate = rate ? rate / o.devices : 0;
  const inflight = new Array<number>(o.devices).fill(0);
  const sent = new Array<number>(o.devices).fill(0);
  let pendingAcks = 0;
  let allAcked: () => void = () => {};

  const publishOne = (i: number) => {
    const seq = sent[i]!++;
    const topic = topics[i]!;
    const t0 = performance.now();
    inflight[i]!++;
    pendingAcks++;
    published++;
    clients[i]!.publish(topic, payload(i, seq), { qos: 1 }, (err) => {
      inflight[i]!--;
      pendingAcks--;
      if (!err) {
        const now = performance.now();
        acked.add(`${i}:${seq}`);
        if (t0 >= steadyFrom) ackLatencies.push(now - t0);
        lastAck = now;
      }
      if (!rate) pump(i);
      if (pendingAcks === 0) allAcked();
    });
  };
  // As fast as the window allows: refill on every acknowledgement.
  const pump = (i: number) => {
    while (inflight[i]! < o.window && performance.now() < end) publishOne(i);
  };
  let ticker: NodeJS.Timeout | undefined;
  if (rate) {
    // A fixed offered rate: every 2 ms, each client catches up to rate × elapsed (never past its window).
    ticker = setInterval(() => {
      const now = performance.now();
      if (now >= end) return;
      const due = Math.floor(((now - started) / 1000) * perClientRate);
      for (let i = 0; i < o.devices; i++) while (sent[i]! < due && inflight[i]! < o.window) publishOne(i);
    }, 2);
  } else {
    for (let i = 0; i < o.devices; i++) pump(i);
  }
  await new Promise<void>((resolve) => setTimeout(resolve, (o.warmup + o.seconds) * 1000));
  clearInterval(ticker);
  // Outstanding acknowledgements, then deliveries: every acknowledged message, or 5 s without progress.
  if (pendingAcks > 0) await Promise.race([new Promise<void>((r) => (allAcked = r)), new Promise((r) => setTimeout(r, 10_000))]);
  await new Promise<void>((resolve) => {
    let idle: NodeJS.Timeout;
    const check = () => {
      clearTimeout(idle);
      if ([...acked].every((id) => delivered.has(id))) return resolve();
      idle = setTimeout(resolve, 5000);
    };
    onDelivery = () => {
      if (delivered.size >= acked.size) check();
      else {
        clearTimeout(idle);
        idle = setTimeout(resolve, 5000);
      }
    };
    check();
  });
  onDelivery = () => {};
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await sub.endAsync(true);
  let lost = 0;
  for (const id of acked) if (!delivered.has(id)) lost++;
  return {
    target: target.name,
    mode: rate ? "rate" : "max",
    ...(rate ? { offeredPerSec: rate } : {}),
    published,
    acked: acked.size,
    delivered: delivered.size,
    lost,
    ackedPerSec: acked.size / ((lastAck - started) / 1000 || 1),
    deliveredPerSec: delivered.size / ((lastDelivery - started) / 1000 || 1),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    ackP99: percentile(ackLatencies, 99),
    warmupP99: percentile(warmupLatencies, 99),
  };
}

function mosquittoTarget(name: string, broker: Mosquitto): Target {
  return {
    name,
    publisher: (i) => ({ url: broker.url, options: { clientId: `bench-${i}`, clean: true }, topic: `bench/${i}` }),
    subscribeUrl: broker.url,
    subscribeTopic: "bench/#",
  };
}

// ---- the Strata side: a root gateway in a child process ------------------------------------------------

interface ChildReady {
  hub: string;
  host: string;
  port: number;
  caPem: string;
  devices: { id: string; key: string }[];
}

async function startStrataChild(sinkUrl: string, devices: number): Promise<{ child: ChildProcess; ready: ChildReady }> {
  // STRATA_BENCH_PROF=<dir>: a CPU profile of the gateway process, to see where its time goes.
  const prof = process.env.STRATA_BENCH_PROF;
  const child = fork(join(__dirname, "run.js"), ["mqtt", "--child-gateway", sinkUrl, String(devices)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    execArgv: [...(prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : []), ...gatewayNodeArgs()],
  });
  const ready = await new Promise<ChildReady>((resolve, reject) => {
    child.once("message", (m) => resolve(m as ChildReady));
    child.once("exit", (code) => reject(new Error(`bench gateway exited with ${code} before it was ready`)));
  });
  return { child, ready };
}

async function stopChild(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.send("stop");
  await exited;
}

/** Child mode: a root gateway with the MQTT head and the mqtt-sink, devices registered; stops on "stop". */
async function childGateway(sinkUrl: string, devices: number): Promise<void> {
  const { startTestGateway } = await import("../support/gateway.js");
  const gw = await startTestGateway({
    plugins: ["mqtt", "mqtt-sink"],
    config: { plugins: { "mqtt-sink": { url: sinkUrl }, mqtt: { websocket: false } } },
  });
  const list: ChildReady["devices"] = [];
  for (let i = 0; i < devices; i++) {
    const { key } = await gw.addDevice(`bench-${i}`);
    list.push({ id: `bench-${i}`, key });
  }
  process.send!({ hub: gw.hubName, host: gw.address, port: gw.port("mqtt"), caPem: gw.caPem, devices: list } satisfies ChildReady);
  await new Promise<void>((resolve) => process.on("message", (m) => m === "stop" && resolve()));
  await gw.stop({ remove: true });
  process.exit(0);
}

function strataTarget(ready: ChildReady, sink: Mosquitto): Target {
  return {
    name: "strata",
    publisher: (i) => {
      const d = ready.devices[i]!;
      return {
        url: `mqtts://${ready.host}:${ready.port}`,
        options: {
          clientId: d.id,
          clean: true,
          protocolVersion: 4,
          username: `${ready.hub}/${d.id}/?api-version=2021-04-12`,
          password: signSas({ resource: `${ready.hub}/devices/${d.id}`, key: d.key, expirySecs: Math.floor(Date.now() / 1000) + 3600 }),
          ca: ready.caPem,
          servername: "localhost",
        },
        topic: `devices/${d.id}/messages/events/`,
      };
    },
    subscribeUrl: sink.url,
    subscribeTopic: "strata/#",
  };
}

// ---- orchestration and report ------------------------------------------------------------------------

async function measure(target: () => Promise<{ target: Target; close(): Promise<void> }>, o: Options): Promise<RunResult[]> {
  const out: RunResult[] = [];
  const rates = [...(o.modes.includes("max") ? [undefined] : []), ...(o.modes.includes("rate") ? [o.rate] : [])];
  for (const rate of rates) {
    const runs: RunResult[] = [];
    for (let r = 0; r < o.repeat; r++) {
      // A fresh broker (and gateway) per run: nothing queued from the previous one.
      const t = await target();
      try {
        runs.push(await runLoad(t.target, o, rate));
      } finally {
        await t.close();
      }
      process.stderr.write(`  ${runs.at(-1)!.target} ${rate ? `${rate}/s` : "max"} run ${r + 1}: ${fmt(runs.at(-1)!)}\n`);
    }
    out.push(medianOf(runs));
  }
  return out;
}

function medianOf(runs: RunResult[]): RunResult {
  const m = (f: (r: RunResult) => number) => median(runs.map(f));
  return {
    ...runs[0]!,
    published: m((r) => r.published), acked: m((r) => r.acked), delivered: m((r) => r.delivered), lost: m((r) => r.lost),
    ackedPerSec: m((r) => r.ackedPerSec), deliveredPerSec: m((r) => r.deliveredPerSec),
    p50: m((r) => r.p50), p99: m((r) => r.p99), ackP99: m((r) => r.ackP99), warmupP99: m((r) => r.warmupP99),
  };
}

function fmt(r: RunResult): string {
  const lostPct = r.acked ? ((100 * r.lost) / r.acked).toFixed(1) : "0";
  return `acked ${r.acked} (${Math.round(r.ackedPerSec)}/s), delivered ${r.delivered} (${Math.round(r.deliveredPerSec)}/s), ` +
    `lost ${r.lost} (${lostPct}%), e2e p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms, puback p99 ${r.ackP99.toFixed(2)} ms, warm-up e2e p99 ${r.warmupP99.toFixed(2)} ms`;
}

function report(results: RunResult[], o: Options): void {
  const row = (r: RunResult) =>
    `| ${r.target} | ${r.mode === "rate" ? `${r.offeredPerSec}/s` : "max"} | ${Math.round(r.ackedPerSec)} | ${Math.round(r.deliveredPerSec)} | ` +
    `${r.lost} of ${r.acked} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.warmupP99.toFixed(2)} |`;
  const lines = [
    `mqtt bench: ${o.devices} devices, QoS 1, ${PAYLOAD_BYTES}-byte payloads, ≤ ${o.window} in flight each, ${o.warmup} s warm-up + ${o.seconds} s per run` +
      (o.repeat > 1 ? `, medians of ${o.repeat}` : ""),
    "",
    "| target | offered | acked/s | delivered/s | lost | e2e p50 ms | e2e p99 ms | warm-up e2e p99 ms |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...results.map(row),
  ];
  const strata = results.find((r) => r.target === "strata" && r.mode === "max");
  for (const base of results.filter((r) => r.target !== "strata" && r.mode === "max")) {
    if (strata) {
      lines.push("", `strata / ${base.target}: acked/s ×${(strata.ackedPerSec / base.ackedPerSec).toFixed(2)}, ` +
        `delivered/s ×${(strata.deliveredPerSec / base.deliveredPerSec).toFixed(2)}`);
    }
  }
  process.stdout.write(lines.join("\n") + "\n");
  process.stdout.write(`json ${JSON.stringify(results)}\n`);
}

export async function run(args: string[]): Promise<void> {
  if (args[0] === "--child-gateway") return childGateway(args[1]!, Number(args[2]));
  const o: Options = {
    seconds: Number(arg(args, "seconds", "10")),
    warmup: Number(arg(args, "warmup", "2")),
    devices: Number(arg(args, "devices", "20")),
    window: Number(arg(args, "window", "100")),
    rate: Number(arg(args, "rate", "5000")),
    repeat: Number(arg(args, "repeat", "1")),
    only: arg(args, "only", "mosquitto,mosquitto-large,strata").split(","),
    modes: arg(args, "modes", "max,rate").split(","),
  };
  const results: RunResult[] = [];
  if (o.only.includes("mosquitto")) {
    process.stderr.write("mosquitto (defaults: max_queued_messages 1000)\n");
    results.push(...await measure(async () => {
      const b = await startMosquitto();
      return { target: mosquittoTarget("mosquitto", b), close: () => b.close() };
    }, o));
  }
  if (o.only.includes("mosquitto-large")) {
    process.stderr.write("mosquitto (max_queued_messages 10000000)\n");
    results.push(...await measure(async () => {
      const b = await startMosquitto(undefined, { maxQueuedMessages: 10_000_000 });
      return { target: mosquittoTarget("mosquitto-large", b), close: () => b.close() };
    }, o));
  }
  if (o.only.includes("strata")) {
    process.stderr.write("strata (root gateway, MQTT head over TLS, mqtt-sink to a mosquitto with unlimited queues)\n");
    results.push(...await measure(async () => {
      // The sink's broker, tuned as a northbound broker should be: no queue limit (it must not be the one
      // losing), no in-flight cap (its receive maximum would bound the sink's window), TCP_NODELAY.
      const sink = await startMosquitto(undefined, { maxQueuedMessages: 0, maxInflightMessages: 0, tcpNoDelay: true });
      const { child, ready } = await startStrataChild(sink.url, o.devices);
      return {
        target: strataTarget(ready, sink),
        close: async () => {
          await stopChild(child);
          await sink.close();
        },
      };
    }, o));
  }
  report(results, o);
}
