/**
 * Bench `amqp`: one load generator against one Strata root running the AMQP head and the MQTT head in the same
 * run, so the two device protocols are compared on the same store and disk. AMQP: rhea clients over TLS, one
 * connection per device with a CBS token, ≤ `window` unsettled 256-byte messages each (the head grants credit as
 * the store absorbs). MQTT: MQTT.js clients over TLS with SAS, QoS 1, ≤ `window` in flight each. Per protocol:
 * accepted/s, accept-latency p50/p99, and lost (accepted but not in the `$upstream` queue afterwards).
 *
 *   node dist/test/bench/run.js amqp [--seconds 5] [--devices 20] [--window 100]
 */
import { once } from "node:events";
import mqtt, { type MqttClient } from "mqtt";
import rhea, { type Connection, type EventContext, type Sender } from "rhea";
import { signSas, UPSTREAM } from "../../core/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { PAYLOAD_BYTES, arg, percentile } from "./common.js";

interface Options { seconds: number; devices: number; window: number }
interface Result { protocol: string; accepted: number; perSec: number; p50: number; p99: number; lost: number }

function token(gw: TestGateway, id: string, key: string): string {
  return signSas({ resource: `${gw.hubName}/devices/${id}`, key, expirySecs: Math.floor(Date.now() / 1000) + 3600 });
}

/** Drives `send(i, done)` per device with at most `window` outstanding until the time is up. */
async function drive(o: Options, send: (i: number, done: (ok: boolean) => void) => void): Promise<{ accepted: number; latencies: number[]; elapsed: number }> {
  const latencies: number[] = [];
  let accepted = 0;
  let outstanding = 0;
  const started = performance.now();
  const end = started + o.seconds * 1000;
  let finished: () => void = () => {};
  const inflight = new Array<number>(o.devices).fill(0);
  const pump = (i: number): void => {
    while (inflight[i]! < o.window && performance.now() < end) {
      inflight[i]!++;
      outstanding++;
      const t0 = performance.now();
      send(i, (ok) => {
        inflight[i]!--;
        outstanding--;
        if (ok) {
          accepted++;
          latencies.push(performance.now() - t0);
        }
        pump(i);
        if (outstanding === 0 && performance.now() >= end) finished();
      });
    }
  };
  for (let i = 0; i < o.devices; i++) pump(i);
  await new Promise<void>((resolve) => {
    finished = resolve;
    setTimeout(() => { if (outstanding === 0) resolve(); }, o.seconds * 1000 + 10);
  });
  return { accepted, latencies, elapsed: (performance.now() - started) / 1000 };
}

async function amqpRun(gw: TestGateway, o: Options, keys: string[]): Promise<Omit<Result, "lost">> {
  const container = rhea.create_container({ id: `bench-${process.pid}` });
  container.on("error", () => undefined);
  const conns: Connection[] = [];
  const senders: Sender[] = [];
  for (let i = 0; i < o.devices; i++) {
    const conn = container.connect({ host: gw.address, port: gw.port("amqp"), transport: "tls", ca: gw.caPem, servername: "localhost", reconnect: false } as never);
    await once(conn as never, "connection_open");
    const cbsIn = conn.open_receiver({ source: { address: "$cbs" } });
    const cbsOut = conn.open_sender({ target: { address: "$cbs" } });
    await once(cbsOut as never, "sendable");
    const reply = once(cbsIn as never, "message");
    cbsOut.send({ message_id: `t${i}`, application_properties: { operation: "put-token", type: "servicebus.windows.net:sastoken", name: "" }, body: token(gw, `amqp${i}`, keys[i]!) });
    await reply;
    const s = conn.open_sender({ target: { address: `/devices/amqp${i}/messages/events` } });
    await once(s as never, "sendable");
    conns.push(conn);
    senders.push(s);
  }
  const waiting = new Map<unknown, (ok: boolean) => void>();
  for (const s of senders) {
    s.on("accepted", (ctx: EventContext) => { waiting.get(ctx.delivery)?.(true); waiting.delete(ctx.delivery); });
    s.on("rejected", (ctx: EventContext) => { waiting.get(ctx.delivery)?.(false); waiting.delete(ctx.delivery); });
  }
  const body = rhea.message.data_section(Buffer.alloc(PAYLOAD_BYTES, 0x2e));
  const queued = new Map<number, Array<(ok: boolean) => void>>();
  const flush = (i: number): void => {
    const q = queued.get(i);
    while (q && q.length > 0 && senders[i]!.sendable()) waiting.set(senders[i]!.send({ body }), q.shift()!);
  };
  senders.forEach((s, i) => s.on("sendable", () => flush(i)));
  const r = await drive(o, (i, done) => {
    let q = queued.get(i);
    if (!q) queued.set(i, (q = []));
    q.push(done);
    flush(i);
  });
  for (const c of conns) c.close();
  return { protocol: "amqp", accepted: r.accepted, perSec: r.accepted / r.elapsed, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99) };
}

async function mqttRun(gw: TestGateway, o: Options, keys: string[]): Promise<Omit<Result, "lost">> {
  const clients: MqttClient[] = await Promise.all(keys.map((key, i) => mqtt.connectAsync(`mqtts://localhost:${gw.port("mqtt")}`, {
    clientId: `mqtt${i}`, username: `${gw.hubName}/mqtt${i}/?api-version=2021-04-12`, password: token(gw, `mqtt${i}`, key),
    ca: gw.caPem, protocolVersion: 4, reconnectPeriod: 0, clean: true,
  })));
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x2e);
  const r = await drive(o, (i, done) => {
    clients[i]!.publish(`devices/mqtt${i}/messages/events/`, payload, { qos: 1 }, (err) => done(!err));
  });
  await Promise.all(clients.map((c) => c.endAsync(true)));
  return { protocol: "mqtt", accepted: r.accepted, perSec: r.accepted / r.elapsed, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99) };
}

export async function run(args: string[]): Promise<void> {
  const o: Options = { seconds: Number(arg(args, "seconds", "5")), devices: Number(arg(args, "devices", "20")), window: Number(arg(args, "window", "100")) };
  const gw = await startTestGateway({ plugins: ["amqp", "mqtt"], config: { max_clients: 1000 } });
  try {
    const amqpKeys: string[] = [];
    const mqttKeys: string[] = [];
    for (let i = 0; i < o.devices; i++) {
      amqpKeys.push((await gw.addDevice(`amqp${i}`)).key);
      mqttKeys.push((await gw.addDevice(`mqtt${i}`)).key);
    }
    const results: Result[] = [];
    for (const [name, fn, keys] of [["amqp", amqpRun, amqpKeys], ["mqtt", mqttRun, mqttKeys]] as const) {
      const before = gw.gw.store.stats().queues[UPSTREAM]?.depth ?? 0;
      const r = await fn(gw, o, [...keys]);
      const after = gw.gw.store.stats().queues[UPSTREAM]?.depth ?? 0;
      results.push({ ...r, lost: Math.max(0, r.accepted - (after - before)) });
      process.stderr.write(`${name} done\n`);
    }
    process.stdout.write(`amqp bench: ${o.devices} devices, window ${o.window}, ${o.seconds} s each, ${PAYLOAD_BYTES}-byte messages, one gateway\n`);
    process.stdout.write("protocol  accepted  accepted/s  p50 ms  p99 ms  lost\n");
    for (const r of results) {
      process.stdout.write(`${r.protocol.padEnd(8)}  ${String(r.accepted).padStart(8)}  ${r.perSec.toFixed(0).padStart(10)}  ${r.p50.toFixed(2).padStart(6)}  ${r.p99.toFixed(2).padStart(6)}  ${r.lost}\n`);
    }
  } finally {
    await gw.stop({ remove: true });
  }
}
