import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { Writable } from "node:stream";
import { test } from "node:test";
import pino from "pino";
import { directSink, leases } from "./harness.js";
import { fakeBroker } from "./fake-broker.js";

// "delivered" must mean the broker acknowledged: these use a scripted broker to withhold or refuse PUBACKs.

test("publishes the broker never acknowledges are retried, not delivered", async (t) => {
  const broker = await fakeBroker(t, () => undefined);
  const sink = await directSink(t, { url: broker.url, ack_timeout_ms: 300 });
  const outcomes = await sink.deliver(leases(5), new AbortController().signal);
  assert.deepEqual(outcomes, ["retry", "retry", "retry", "retry", "retry"]);
  assert.equal(broker.publishes.length, 5, "all five went out and waited for their PUBACK");
  assert.equal(broker.publishes[0]!.qos, 1);
});

test("only the acknowledged prefix is delivered when the broker goes quiet", async (t) => {
  const broker = await fakeBroker(t, (_, i) => (i < 3 ? 0 : undefined));
  const sink = await directSink(t, { url: broker.url, ack_timeout_ms: 300 });
  const outcomes = await sink.deliver(leases(6), new AbortController().signal);
  assert.deepEqual(outcomes, ["delivered", "delivered", "delivered", "retry", "retry", "retry"]);
  assert.deepEqual(sink.stats(), { delivered: 3, retried: 3, deadLettered: 0 });
});

test("a PUBACK refusal: quota exceeded is retried, payload format invalid is dead-lettered", async (t) => {
  const codes = [0x00, 0x97, 0x99];
  const broker = await fakeBroker(t, (_, i) => codes[i] ?? 0);
  const sink = await directSink(t, { url: broker.url });
  const outcomes = await sink.deliver(leases(3), new AbortController().signal);
  assert.equal(outcomes[0], "delivered");
  assert.equal(outcomes[1], "retry");
  assert.match((outcomes[2] as { deadLetter: string }).deadLetter, /payload format invalid/);
});

test("a message larger than the broker's maximum packet size is dead-lettered without being sent", async (t) => {
  const broker = await fakeBroker(t, () => 0, { maximumPacketSize: 200 });
  const sink = await directSink(t, { url: broker.url });
  const batch = leases(3);
  (batch[1]!.message as { body: Buffer }).body = Buffer.alloc(500);
  const outcomes = await sink.deliver(batch, new AbortController().signal);
  assert.equal(outcomes[0], "delivered");
  assert.match((outcomes[1] as { deadLetter: string }).deadLetter, /at most 200/);
  assert.equal(outcomes[2], "delivered");
  assert.equal(broker.publishes.length, 2);
});

test("no more publishes await acknowledgement than the broker's receive maximum", async (t) => {
  const broker = await fakeBroker(t, () => undefined, { receiveMaximum: 2 });
  const sink = await directSink(t, { url: broker.url, max_in_flight: 100 });
  const pending = sink.deliver(leases(4), new AbortController().signal);
  // 1. two go out; a third would have been written in the same tick, so it would be here by now.
  await broker.waitPublishes(2);
  await new Promise((r) => setImmediate(r));
  assert.equal(broker.publishes.length, 2);
  // 2. each acknowledgement lets one more out.
  broker.ack(broker.publishes[0]!);
  await broker.waitPublishes(3);
  broker.ack(broker.publishes[1]!);
  await broker.waitPublishes(4);
  broker.ack(broker.publishes[2]!);
  broker.ack(broker.publishes[3]!);
  assert.deepEqual(await pending, ["delivered", "delivered", "delivered", "delivered"]);
});

test("a broker that is not there: every message is retried, quickly", async (t) => {
  const broker = await fakeBroker(t, () => 0);
  const closed = broker.url.replace(/:\d+$/, ":1"); // port 1: connection refused
  const sink = await directSink(t, { url: closed, connect_timeout_ms: 2000 });
  const started = Date.now();
  const outcomes = await sink.deliver(leases(4), new AbortController().signal);
  assert.deepEqual(outcomes, ["retry", "retry", "retry", "retry"]);
  assert.ok(Date.now() - started < 2000, "refused connections fail fast, not after the connect timeout");
});

test("an unreachable broker is logged once as a warning, not at every retry", async (t) => {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: "debug" }, new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  }));
  const sink = await directSink(t, { url: "mqtt://127.0.0.1:1" }, logger);
  for (let i = 0; i < 3; i++) assert.deepEqual(await sink.deliver(leases(1), new AbortController().signal), ["retry"]);
  const warnings = lines.filter((l) => l.level === 40 && /cannot reach the broker/.test(l.msg));
  assert.equal(warnings.length, 1);
  assert.ok(lines.filter((l) => l.level === 20 && /still cannot reach/.test(l.msg)).length >= 2);
});

test("stopping while publishes await acknowledgement settles them as retry", async (t) => {
  const broker = await fakeBroker(t, () => undefined);
  const sink = await directSink(t, { url: broker.url, ack_timeout_ms: 60_000 });
  const abort = new AbortController();
  const pending = sink.deliver(leases(3), abort.signal);
  // 1. wait until the broker holds all three, 2. abort as the hub's drain does on stop.
  await broker.waitPublishes(3);
  abort.abort();
  assert.deepEqual(await pending, ["retry", "retry", "retry"]);
});

test("stop does not wait out a connection attempt that hangs", async (t) => {
  // A listener that accepts and never answers CONNECT: the warm-up connection at start hangs.
  const sockets = new Set<Socket>();
  let accepted!: () => void;
  const connected = new Promise<void>((r) => (accepted = r));
  const server = createServer((s) => {
    sockets.add(s);
    accepted();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  t.after(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  const port = (server.address() as { port: number }).port;
  const sink = await directSink(t, { url: `mqtt://127.0.0.1:${port}`, connect_timeout_ms: 60_000 });
  await connected;
  const started = Date.now();
  await sink.stop();
  assert.ok(Date.now() - started < 2000, `stop took ${Date.now() - started} ms`);
});
