// Fairness per child, with real gateways (127.77.31.x): root ← mid ← {childA, childB}. childA floods through
// six leaves, childB has one leaf. While the root is down both backlogs pile up at mid; when it comes back,
// mid's link to the root is the bottleneck and its `$upstream` queue decides who goes first. Shares are per
// child (the first hop below mid), so childB's one leaf gets half of the link, not one seventh.
import "reflect-metadata";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { buildTree, treeUnavailable, type Tree } from "../support/tree.js";
import { MqttLeaf } from "../support/chaos.js";
import { tally } from "./leaves.js";

const skip = treeUnavailable();
const A_LEAVES = 6;
// More than the link has in flight (2 pipelined batches of 500): the measured window must span several
// round trips, or it measures the wire order inside one round trip, not the shares.
const PER_A_LEAF = 600;
const B_MESSAGES = 600;

let tree: Tree;
const leaves: MqttLeaf[] = [];

before(async () => {
  if (skip) return;
  tree = await buildTree({
    subnet: "127.77.31",
    gateways: [{ id: "root" }, { id: "mid", parent: "root" }, { id: "childA", parent: "mid" }, { id: "childB", parent: "mid" }],
    leaves: [
      ...Array.from({ length: A_LEAVES }, (_, i) => ({ id: `flood-${i}`, gateway: "childA" })),
      { id: "quiet", gateway: "childB" },
    ],
  });
  await tree.startAll();
});

after(async () => {
  for (const l of leaves) await l.close();
  await tree?.cleanup();
});

test("a flooding child does not starve its sibling: the quiet child gets >= 40% of the parent's link", { skip }, async (t) => {
  const mid = tree.gw("mid");
  const open = (id: string, gateway: string) =>
    MqttLeaf.open({ id, hub: tree.hub, key: tree.keys.get(id)!, host: tree.gw(gateway).address, caPem: tree.caPem });
  const flood = await Promise.all(Array.from({ length: A_LEAVES }, (_, i) => open(`flood-${i}`, "childA")));
  const quiet = await open("quiet", "childB");
  leaves.push(...flood, quiet);

  // The parent's link goes away: everything the children forward piles up in mid's store.
  await tree.root.stop();
  const mark = mid.lines.length;
  await Promise.all([...flood.map((l) => l.send(0, PER_A_LEAF, 20)), quiet.send(0, B_MESSAGES, 20)]);

  await tree.root.start();
  await mid.waitUpstream(30_000, mark);
  const total = A_LEAVES * PER_A_LEAF + B_MESSAGES;
  const records = await tree.followTelemetry((r) => r.length >= total, 60_000);
  const { seqs, duplicates } = tally(records);
  assert.deepEqual(duplicates, []);
  assert.equal(records.length, total);
  // Per-device order holds inside each share.
  for (const [device, list] of seqs) {
    assert.deepEqual(list, [...list].sort((a, b) => a - b), `${device} arrived out of order`);
  }
  const chunks: number[] = [];
  for (let i = 0; i < 3 * B_MESSAGES; i += 100) chunks.push(records.slice(i, i + 100).filter((r) => r.deviceId === "quiet").length);
  // While both have a backlog: the first 2 × B_MESSAGES records at the root (the link has up to 1000 in flight,
  // so a shorter window would measure the wire order of one round trip, not shares). Fair per child: ~50 %;
  // fair per leaf: ~14 %.
  const window = records.slice(0, 2 * B_MESSAGES);
  const quietShare = window.filter((r) => r.deviceId === "quiet").length / window.length;
  t.diagnostic(`childB's share of the first ${window.length} records at the root: ${(quietShare * 100).toFixed(0)}%; quiet per 100: ${chunks.join(" ")}`);
  assert.ok(quietShare >= 0.4,
    `childB had ${(quietShare * 100).toFixed(0)}% of the first ${window.length} records at the root; quiet per 100: ${chunks.join(" ")}`);
});
