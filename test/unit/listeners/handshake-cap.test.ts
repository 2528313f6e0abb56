// Reconnect storms (#7): the cap on TLS handshakes in progress (core/listeners.ts HandshakeGate, `[listen]
// max_tls_handshakes`) and the jittered reconnect of the child's upstream link.
import "reflect-metadata";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { parseConfig } from "../../../core/config/index.js";
import { StrataAggregateError } from "../../../core/errors.js";
import { generateKey } from "../../../core/identity/sas.js";
import { HandshakeGate, Listeners } from "../../../core/listeners.js";
import { silentLogger } from "../../../core/log.js";
import type { MetricsRegistry } from "../../../core/metrics/metrics.js";
import { ensureDevPki, type DevPki } from "../../../core/pki/index.js";
import { TOKENS } from "../../../core/tokens.js";
import { UpstreamLink } from "../../../core/upstream/link.js";
import { startTestGateway } from "../../support/gateway.js";

const pkiDir = mkdtempSync(join(tmpdir(), "strata-handshake-pki-"));
let pkiPromise: Promise<DevPki> | undefined;
const pki = () => (pkiPromise ??= ensureDevPki(pkiDir, { hostnames: ["localhost"], ips: ["127.0.0.1"] }));
process.on("exit", () => rmSync(pkiDir, { recursive: true, force: true }));

/** A TLS client that resolves once its handshake is done (verified against `ca`). */
function handshake(port: number, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca }, () => resolve(socket));
    socket.once("error", reject);
  });
}

const closed = (s: net.Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once("close", () => r())));

test("200 TLS connections at once on a gateway capped at 4: never more than 4 handshakes in progress, all 200 complete", async (t) => {
  const gw = await startTestGateway({
    plugins: ["mqtt", "amqp"],
    config: { listen: { address: "127.0.0.1", mqtt: 0, amqp: 0, https: 0, max_tls_handshakes: 4 } },
  });
  t.after(() => gw.stop({ remove: true }));
  const gate = gw.gw.listeners.handshakes;
  // Sampled on every turn of the event loop as well: the gate's own peak must agree with what we see.
  let seenPeak = 0;
  const sampler = setInterval(() => (seenPeak = Math.max(seenPeak, gate.stats().inProgress)), 1);
  t.after(() => clearInterval(sampler));

  // The heads' listeners and the HTTPS front share the one cap.
  const ports = ["mqtt", "amqp", "https"].map((name) => gw.port(name));
  const started = Date.now();
  const sockets = await Promise.all(Array.from({ length: 200 }, (_, i) => handshake(ports[i % ports.length]!, gw.caPem)));
  t.after(() => sockets.forEach((socket) => socket.destroy())); // before the gateway stops (after() runs last-in first)
  const ms = Date.now() - started;
  clearInterval(sampler);
  assert.equal(sockets.filter((s) => s.authorized).length, 200, "every handshake completed and verified");

  // TLS 1.3: a client is done before the server has read its Finished; the last few finish on the server now.
  await waitFor(() => gate.stats().inProgress === 0);
  const s = gate.stats();
  assert.equal(s.limit, 4);
  assert.ok(s.peakInProgress <= 4 && seenPeak <= 4, `at most 4 in progress (peak ${s.peakInProgress}, sampled ${seenPeak})`);
  assert.equal(s.peakInProgress, 4, "the storm did fill the cap");
  assert.ok(s.deferred >= 150, `most connections waited their turn (deferred ${s.deferred})`);
  assert.deepEqual({ inProgress: s.inProgress, waiting: s.waiting, waitTimeouts: s.waitTimeouts, handshakeTimeouts: s.handshakeTimeouts },
    { inProgress: 0, waiting: 0, waitTimeouts: 0, handshakeTimeouts: 0 });

  // Exposed with the other listener figures on /metrics.
  const text = await (gw.gw.container.resolve(TOKENS.Metrics) as MetricsRegistry).text();
  assert.match(text, new RegExp(`^strata_tls_handshakes_deferred_total ${s.deferred}$`, "m"));
  assert.match(text, /^strata_tls_handshakes_in_progress 0$/m);
  console.log(`# 200 handshakes through a cap of 4 in ${ms} ms, ${s.deferred} deferred`);
});

test("a waiter is dropped after the wait timeout, a stalled handshake after the handshake timeout; close() drops waiters at once", async (t) => {
  const p = await pki();
  const server = tls.createServer({ cert: p.server.chain, key: p.server.key }, (s) => s.on("error", () => undefined));
  const gate = new HandshakeGate({ limit: 1, waitTimeoutMs: 300, handshakeTimeoutMs: 900 });
  gate.guard(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  t.after(() => server.close());

  // A client that connects and never says hello holds the only slot; the next one waits behind it.
  const staller = net.connect(port, "127.0.0.1");
  await new Promise((r) => staller.once("connect", r));
  await waitFor(() => gate.stats().inProgress === 1);
  const waiter = net.connect(port, "127.0.0.1");
  await waitFor(() => gate.stats().waiting === 1);
  await closed(waiter); // dropped by the wait timeout
  assert.equal(gate.stats().waitTimeouts, 1);
  await closed(staller); // dropped by the handshake timeout, which frees the slot
  assert.equal(gate.stats().handshakeTimeouts, 1);
  assert.equal(gate.stats().inProgress, 0);
  const ok = await handshake(port, p.trustBundle);
  assert.equal(ok.authorized, true, "the freed slot serves the next client");
  ok.destroy();

  // Shutting down: connections still waiting for a slot do not hold server.close() open.
  const staller2 = net.connect(port, "127.0.0.1");
  await waitFor(() => gate.stats().inProgress === 1);
  const waiter2 = net.connect(port, "127.0.0.1");
  await waitFor(() => gate.stats().waiting === 1);
  const closing = Date.now();
  const done = new Promise<void>((r) => server.close(() => r()));
  await closed(waiter2);
  staller2.destroy();
  await done;
  assert.ok(Date.now() - closing < 250, "close() did not wait for the waiter's timeout");
  assert.equal(gate.stats().waitTimeouts, 1, "dropped by close, not by its timeout");
});

test("[listen] max_tls_handshakes: 32 by default, at least 1; Listeners without options caps at 32", () => {
  const base = `hub = "h"\ndevice_id = "gw"\nhostname = "gw"\ndata_dir = "d"\n[tls]\ncert_file = "c"\nkey_file = "k"\nca_file = "a"\n`;
  const parse = (extra: string) => parseConfig(base + extra, { source: "strata.toml", baseDir: "/etc/strata" });
  assert.equal(parse("").listen.max_tls_handshakes, 32);
  assert.equal(parse("[listen]\nmax_tls_handshakes = 8\n").listen.max_tls_handshakes, 8);
  assert.throws(() => parse("[listen]\nmax_tls_handshakes = 0\n"), (e: unknown) =>
    e instanceof StrataAggregateError && e.errors.some((x) => /^listen\.max_tls_handshakes: /.test(x.message)));
  assert.equal(new Listeners().handshakes.stats().limit, 32);
});

test("children reconnecting to a parent that came back are spread out: the upstream link's retries are jittered", async (t) => {
  // A parent that is there but refuses every connection: each child's attempt fails at once, then it backs off.
  const arrivals: number[] = [];
  const parent = net.createServer((s) => {
    arrivals.push(Date.now());
    s.destroy();
  });
  await new Promise<void>((r) => parent.listen(0, "127.0.0.1", r));
  t.after(() => parent.close());
  const { port } = parent.address() as AddressInfo;
  const p = await pki();
  const CHILDREN = 16;
  const links = Array.from({ length: CHILDREN }, (_, i) => new UpstreamLink({
    self: `gw${i}`, hub: "testhub", ca: p.trustBundle, key: generateKey(), logger: silentLogger(),
    identities: { authChain: (id) => [id] },
    parent: { hostname: "localhost", address: "127.0.0.1", amqp_port: port, https_port: 1, transport: "amqps" },
    backoffMs: { min: 600, max: 600 },
  }));
  t.after(() => Promise.all(links.map((l) => l.stop())));
  for (const l of links) l.start(); // all at the same instant, as after a shared outage
  await waitFor(() => arrivals.length >= 2 * CHILDREN, 5000);
  const first = arrivals.slice(0, CHILDREN);
  const second = arrivals.slice(CHILDREN, 2 * CHILDREN);
  const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);
  // Each retry waits between half and all of its 600 ms base, at random: the herd arrives over ~300 ms,
  // where without jitter it would arrive as it left (together).
  assert.ok(Math.min(...second) - Math.min(...first) >= 250, "no retry before half the base delay");
  assert.ok(spread(second) >= 120, `retries spread over ${spread(second)} ms (first attempts over ${spread(first)} ms)`);
});

async function waitFor(pred: () => boolean, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!pred()) {
    if (Date.now() > deadline) assert.fail("condition not met in time");
    await new Promise((r) => setTimeout(r, 5)); // polling the gate's own stats
  }
}
