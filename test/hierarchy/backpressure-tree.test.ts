// A 5-gateway chain (127.77.60.x) under load with the root's northbound sink blocked: a real mosquitto the
// root's mqtt-sink publishes to is down. Small store quotas on the upper four make each layer refuse its
// child once full (the store's quota refusal → the child's upstream link retries), so the backlog builds on
// every layer; `strata tree` at the root shows all five with a non-zero queue, /metrics on each passes
// promtool. Then mosquitto comes back: every queue drains to zero and every message arrives once.
import "reflect-metadata";
import assert from "node:assert/strict";
import https from "node:https";
import { after, before, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { connectAsync, type MqttClient } from "mqtt";
import type { TreeView } from "../../plugins/metrics/index.js";
import { promtoolCheck } from "../integration/metrics/helpers.js";
import { startMosquitto, type Mosquitto } from "../support/mosquitto.js";
import { needPeer } from "../support/peers.js";
import { buildTree, runCli, treeUnavailable, type Tree } from "../support/tree.js";
import { openLeaf, type Leaf } from "./leaves.js";

const skip = treeUnavailable() ?? needPeer("mosquitto") ?? needPeer("prometheus", "promtool");
const CHAIN = ["root", "gw2", "gw3", "gw4", "gw5"];
const PER_LEAF = 1000;
/** Per layer above the leaves' gateway: a few hundred messages each (gw5 keeps the default 1 GiB). */
const SMALL_QUOTA = 64 * 1024;
const SUBSCRIBER = "backpressure-check";

let tree: Tree;
let broker: Mosquitto;
let leaves: Leaf[] = [];
let subscriber: MqttClient | undefined;

before(async () => {
  if (skip) return;
  // The broker keeps a persistent session for the test's subscriber, so nothing published after the
  // restart is missed while the subscriber reconnects.
  broker = await startMosquitto(undefined, { persistence: true, maxQueuedMessages: 0 });
  const first = await connectAsync(broker.url, { clientId: SUBSCRIBER, clean: false, reconnectPeriod: 0 });
  await first.subscribeAsync("strata/#", { qos: 1 });
  await first.endAsync();
  await broker.stop();
  tree = await buildTree({
    subnet: "127.77.60",
    gateways: CHAIN.map((id, i) => ({
      id,
      ...(i > 0 ? { parent: CHAIN[i - 1]! } : {}),
      ...(i < 4 ? { config: { store: { quota_bytes: SMALL_QUOTA } } } : {}),
      ...(i === 0 ? { plugins: { "mqtt-sink": { url: broker.url, protocol_version: 5 } } } : {}),
    })),
    leaves: [{ id: "leafM", gateway: "gw5" }, { id: "leafQ", gateway: "gw5" }],
    plugins: { metrics: { report_interval_secs: 1 } },
  });
  await tree.startAll();
  leaves = [
    await openLeaf("leafM", tree.leafConnectionString("leafM"), "mqtt", tree.caPem),
    await openLeaf("leafQ", tree.leafConnectionString("leafQ"), "amqp", tree.caPem),
  ];
});

after(async () => {
  for (const l of leaves) await l.close();
  await subscriber?.endAsync().catch(() => undefined);
  await tree?.cleanup();
  await broker?.close();
});

async function treeView(): Promise<TreeView> {
  return JSON.parse(await runCli(["tree", "--json", "--config", tree.root.configFile])) as TreeView;
}

/** Polls the root's tree until every gateway reported after `since` and `ok` holds for each. */
async function waitForTree(what: string, since: number, ok: (depth: number) => boolean, ms: number): Promise<TreeView> {
  const deadline = Date.now() + ms;
  let last: TreeView | undefined;
  for (;;) {
    last = await treeView();
    const fresh = last.nodes.length === CHAIN.length && last.nodes.every((n) => n.state && n.state.at > since && ok(n.state.upstream.depth));
    if (fresh) return last;
    if (Date.now() > deadline) {
      // What each gateway says about itself, for the failure message.
      const metrics = await Promise.all(CHAIN.map(async (id) => `--- ${id}\n${(await getMetrics(tree.gw(id).address).catch((e: Error) => e.message)).split("\n").filter((l) => /^strata_(upstream_messages|queue_depth|store_used|store_dropped|hub_messages)/.test(l)).join("\n")}`));
      const logs = CHAIN.map((id) => `--- ${id}\n${tree.gw(id).lines.filter((l) => !l.includes("amqp message refused")).slice(-4).map((l) => l.slice(0, 300)).join("\n")}`).join("\n");
      throw new Error(`${what}: not after ${ms} ms: ${last.nodes.map((n) => `${n.device} depth=${n.state?.upstream.depth} at=${n.state ? n.state.at - since : "-"}`).join(", ")}\n${metrics.join("\n")}\n${logs}`);
    }
    await delay(500);
  }
}

function getMetrics(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get({ host: address, port: 443, path: "/metrics", ca: tree.caPem }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${address}: ${res.statusCode} ${body}`))));
    }).once("error", reject);
  });
}

test("the root's sink blocked: every layer queues, strata tree shows all five; unblocked: all drain to zero, each message once", { skip, timeout: 120_000 }, async () => {
  const started = Date.now();
  // 1. The leaves send 2000 messages; gw5 acknowledges them all (its quota is large), the layers above fill up.
  await Promise.all(leaves.map((l) => l.send(0, PER_LEAF, 10)));
  const sent = Date.now();
  const blocked = await waitForTree("every layer holds a backlog", sent, (depth) => depth > 0, 45_000);
  const text = await runCli(["tree", "--config", tree.root.configFile]);
  const rows = text.trim().split("\n").slice(1);
  assert.equal(rows.length, 5, text);
  for (const [i, row] of rows.entries()) {
    const [name, , , queue] = row.replace(/└ /, "").trim().split(/\s+/);
    assert.equal(name, CHAIN[i], text);
    assert.ok(Number(queue) > 0, `${name} shows no queue:\n${text}`);
  }
  // The refusals are the store's quota at work: the four upper layers count them.
  for (const n of blocked.nodes.slice(0, 4)) assert.ok(n.state!.dropped.quota > 0, `${n.device} refused nothing: ${JSON.stringify(n.state)}`);
  // /metrics on each, with its queue: promtool accepts every one.
  for (const [i, id] of CHAIN.entries()) {
    const body = await getMetrics(tree.gw(id).address);
    const lint = await promtoolCheck(body);
    assert.equal(lint.code, 0, `${id}: ${lint.output}`);
    const endpoint = i === 0 ? 'sink:mqtt' : "\\$upstream";
    assert.match(body, new RegExp(`^strata_queue_depth\\{endpoint="${endpoint}"\\} [1-9]`, "m"), id);
  }

  // 2. The broker comes back: the root's sink drains, each layer accepts its child again, down to gw5.
  const received = new Map<string, number>();
  await broker.start();
  subscriber = await connectAsync(broker.url, { clientId: SUBSCRIBER, clean: false, reconnectPeriod: 0 });
  subscriber.on("message", (topic, payload) => {
    const key = `${topic.split("/")[1]}:${(JSON.parse(payload.toString("utf8")) as { n: number }).n}`;
    received.set(key, (received.get(key) ?? 0) + 1);
  });
  const unblocked = Date.now();
  await waitForTree("every queue drained", unblocked, (depth) => depth === 0, 60_000);
  const deadline = Date.now() + 20_000;
  while (received.size < 2 * PER_LEAF && Date.now() < deadline) await delay(200);
  assert.equal(received.size, 2 * PER_LEAF, "every message arrived");
  assert.deepEqual([...received].filter(([, c]) => c > 1), [], "none twice");
  console.log(`backpressure chain: blocked after ${sent - started} ms of sending, drained ${Date.now() - unblocked} ms after the sink came back; root quota refusals ${blocked.nodes[0]!.state!.dropped.quota}`);
});
