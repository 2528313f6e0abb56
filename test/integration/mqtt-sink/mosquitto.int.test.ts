import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { needPeer } from "../../support/peers.js";
import { startMosquitto } from "../../support/mosquitto.js";
import { ensureDevPki } from "../../../core/index.js";
import { directSink, leases, startSinkRig, subscriber } from "./harness.js";

const mosquitto = needPeer("mosquitto");

test("messages queued for the sink reach a subscriber with their properties, in order", { skip: mosquitto }, async (t) => {
  const broker = await startMosquitto(t);
  const sub = await subscriber(t, broker.url, "strata/#");
  const rig = await startSinkRig(t, { url: broker.url });
  const sent = await rig.enqueue(300, (i) => ({
    source: i % 3 === 0 ? "gw/filter" : "d1",
    properties: { n: String(i), alert: "a b&c=d" },
    systemProperties: { messageId: `m-${i}`, contentType: "application/json", ...(i % 3 === 0 ? { outputName: "out1" } : {}) },
  }));
  await sub.waitFor(sent.length);
  const byId = new Map(sub.received.map((r) => [r.userProperties["strata-id"], r]));
  for (const [i, m] of sent.entries()) {
    const r = byId.get(m.id);
    assert.ok(r, `message ${m.id} arrived`);
    assert.equal(r.topic, i % 3 === 0 ? "strata/gw/modules/filter/messages" : "strata/d1/messages");
    assert.equal(r.payload.toString(), m.body.toString());
    assert.equal(r.contentType, "application/json");
    assert.equal(r.userProperties.n, String(i));
    assert.equal(r.userProperties.alert, "a b&c=d");
    assert.equal(r.userProperties["$.mid"], `m-${i}`);
    assert.equal(r.userProperties["$.cdid"], i % 3 === 0 ? "gw" : "d1");
    if (i % 3 === 0) assert.equal(r.userProperties["$.on"], "out1");
  }
  // Per source, in the order they were queued.
  for (const source of ["strata/d1/messages", "strata/gw/modules/filter/messages"]) {
    const ns = sub.received.filter((r) => r.topic === source).map((r) => Number(r.userProperties.n));
    assert.deepEqual(ns, [...ns].sort((a, b) => a - b), `${source} in order`);
  }
});

test("MQTT 3.1.1 with the JSON envelope, read by mosquitto_sub", { skip: needPeer("mosquitto-clients", "mosquitto_sub") || mosquitto }, async (t) => {
  const broker = await startMosquitto(t);
  const count = 20;
  // -d prints the SUBACK, so we know it listens before anything is published (stdbuf: line-buffered pipe).
  const sub = spawn("stdbuf", ["-oL", "mosquitto_sub", "-h", broker.host, "-p", String(broker.port), "-V", "mqttv311", "-q", "1",
    "-t", "strata/#", "-C", String(count), "-v", "-d"], { stdio: ["ignore", "pipe", "inherit"] });
  t.after(() => sub.kill());
  let out = "";
  const exited = new Promise<number | null>((resolve) => sub.once("exit", resolve));
  await new Promise<void>((resolve) => sub.stdout.on("data", (c: Buffer) => {
    out += c.toString();
    if (out.includes("SUBACK")) resolve();
  }));
  const rig = await startSinkRig(t, { url: broker.url, protocol_version: 4, format: "envelope" });
  const sent = await rig.enqueue(count, (i) => ({ properties: { k: `v${i}` }, ...(i === 0 ? { body: Buffer.from([0xff, 0x00]) } : {}) }));
  assert.equal(await exited, 0);
  const lines = out.split("\n").filter((l) => l.startsWith("strata/"));
  assert.equal(lines.length, count);
  const envelopes = lines.map((l) => JSON.parse(l.slice(l.indexOf(" ") + 1)));
  assert.deepEqual(envelopes.map((e) => e.messageId), sent.map((m) => m.systemProperties.messageId));
  assert.equal(envelopes[1].deviceId, "d1");
  assert.deepEqual(envelopes[1].properties, { k: "v1" });
  assert.equal(envelopes[1].body, '{"n":1}');
  assert.equal(envelopes[1].enqueuedTime, new Date(sent[1]!.enqueuedTime).toISOString());
  assert.deepEqual([envelopes[0].body, envelopes[0].bodyEncoding], [Buffer.from([0xff, 0x00]).toString("base64"), "base64"]);
});

test("mosquitto stopped and restarted while messages flow: nothing lost", { skip: mosquitto }, async (t) => {
  // A persistent broker keeps the subscriber's session and what it queued for it across the restart.
  const broker = await startMosquitto(t, { persistence: true, maxQueuedMessages: 0 });
  const sub = await subscriber(t, broker.url, "strata/#");
  const rig = await startSinkRig(t, { url: broker.url });
  const total = 1500;
  // 1. a first third flows; 2. the broker goes away with part of it possibly in flight;
  // 3. the second third is queued while it is down; 4. it comes back; 5. the last third follows.
  await rig.enqueue(500);
  await sub.waitFor(200);
  await broker.stop();
  await rig.enqueue(500);
  assert.ok(rig.depth() >= 500, "messages wait in the sink's queue while the broker is down");
  await broker.start();
  await rig.enqueue(500);
  await sub.waitFor(total);
  assert.equal(sub.ids.size, total);
  const stats = rig.plugin.stats();
  assert.ok(stats.retried > 0, "the outage was noticed and retried");
  assert.equal(stats.deadLettered, 0);
});

test("mqtts with ca_file, username and password_file; QoS 2", { skip: mosquitto }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "strata-sink-tls-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pki = await ensureDevPki(join(dir, "pki"), { hostnames: ["localhost"], ips: ["127.0.0.1"] });
  const broker = await startMosquitto(t, {
    tls: { certFile: pki.paths.serverChain, keyFile: pki.paths.serverKey },
    users: { strata: "s3cret pass", reader: "r" },
  });
  assert.match(broker.url, /^mqtts:/);
  const sub = await subscriber(t, broker.url, "strata/#", { ca: pki.trustBundle, username: "reader", password: "r" });
  const passwordFile = join(dir, "sink.password");
  writeFileSync(passwordFile, "s3cret pass\n", { mode: 0o600 });
  const sink = await directSink(t, { url: broker.url, ca_file: pki.paths.trustBundle, username: "strata", password_file: passwordFile, qos: 2 });
  const batch = leases(50);
  const outcomes = await sink.deliver(batch, new AbortController().signal);
  assert.deepEqual(outcomes, batch.map(() => "delivered"));
  await sub.waitFor(batch.length);
  assert.deepEqual([...sub.ids].sort(), batch.map((l) => l.message.id).sort());
});

test("a wrong password: every message is retried, none delivered or dead-lettered", { skip: mosquitto }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "strata-sink-auth-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const broker = await startMosquitto(t, { users: { strata: "right" } });
  const passwordFile = join(dir, "sink.password");
  writeFileSync(passwordFile, "wrong", { mode: 0o600 });
  const sink = await directSink(t, { url: broker.url, username: "strata", password_file: passwordFile });
  assert.deepEqual(await sink.deliver(leases(2), new AbortController().signal), ["retry", "retry"]);
});

test("a password file others can read is refused at start, naming the key", { skip: mosquitto }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "strata-sink-mode-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const passwordFile = join(dir, "sink.password");
  writeFileSync(passwordFile, "pw", { mode: 0o644 });
  await assert.rejects(directSink(t, { password_file: passwordFile }), (err: Error & { code?: string }) =>
    err.code === "STRATA_CONFIG_SECRET_MODE" && err.message.includes("plugins.mqtt-sink.password_file"));
});
