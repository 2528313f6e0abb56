// A chain of five gateways (root + 4 below) on 127.77.2.x, leaves at the bottom over MQTT and AMQP.
import "reflect-metadata";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { buildTree, treeUnavailable, type Tree } from "../support/tree.js";
import { openLeaf, tally, type Leaf } from "./leaves.js";

const skip = treeUnavailable();
let tree: Tree;
let leaves: Leaf[] = [];
const PER_LEAF = 1000;
const OFFLINE = 300;

before(async () => {
  if (skip) return;
  tree = await buildTree({
    subnet: "127.77.2",
    gateways: [
      { id: "root" },
      { id: "gw1", parent: "root" },
      { id: "gw2", parent: "gw1", transport: "auto" },
      { id: "gw3", parent: "gw2" },
      { id: "gw4", parent: "gw3" },
    ],
    leaves: [{ id: "leafM", gateway: "gw4" }, { id: "leafQ", gateway: "gw4" }],
  });
  await tree.startAll();
  leaves = [
    await openLeaf("leafM", tree.leafConnectionString("leafM"), "mqtt", tree.caPem),
    await openLeaf("leafQ", tree.leafConnectionString("leafQ"), "amqp", tree.caPem),
  ];
});

after(async () => {
  for (const l of leaves) await l.close();
  await tree?.cleanup();
});

test("1000 messages per leaf cross four hops and reach the root exactly once with the leaf's identity", { skip }, async () => {
  await Promise.all(leaves.map((l) => l.send(0, PER_LEAF, 10)));
  const records = await tree.followTelemetry((r) => r.length >= 2 * PER_LEAF, 120_000);
  const { seqs, duplicates } = tally(records);
  assert.deepEqual(duplicates, []);
  assert.equal(records.length, 2 * PER_LEAF);
  for (const id of ["leafM", "leafQ"]) {
    assert.deepEqual([...seqs.get(id)!].sort((a, b) => a - b), Array.from({ length: PER_LEAF }, (_, i) => i), id);
  }
});

test("the root killed while the leaves keep sending: after its restart the backlog arrives in per-device order, nothing lost", { skip }, async () => {
  // 1. kill -9 the root; gw1 loses its parent (the leaves' gateway gw4 is four hops away and keeps acking).
  const mark = tree.gw("gw1").lines.length;
  await tree.root.kill();
  await tree.gw("gw1").waitForLog("upstream link lost", 30_000, mark);
  // 2. The leaves send one message at a time (so the order they were acknowledged in is the order sent).
  await Promise.all(leaves.map((l) => l.send(PER_LEAF, PER_LEAF + OFFLINE, 1)));
  // 3. The root comes back; gw1 reconnects within its capped backoff and drains the backlog.
  const restartMark = tree.gw("gw1").lines.length;
  await tree.root.start();
  await tree.gw("gw1").waitUpstream(30_000, restartMark);
  const total = 2 * (PER_LEAF + OFFLINE);
  const records = await tree.followTelemetry((r) => r.length >= total, 120_000);
  const { seqs, duplicates } = tally(records);
  assert.deepEqual(duplicates, []);
  assert.equal(records.length, total);
  for (const id of ["leafM", "leafQ"]) {
    const offline = seqs.get(id)!.filter((n) => n >= PER_LEAF);
    assert.deepEqual(offline, Array.from({ length: OFFLINE }, (_, i) => PER_LEAF + i), `${id}: in order, none lost`);
  }
});
