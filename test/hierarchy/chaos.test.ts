// Chaos on a 5-gateway chain (root ← gw1 ← gw2 ← gw3 ← gw4 on 127.77.20.x), 10 MQTT.js leaves on gw4 sending
// QoS 1 telemetry: (1) kill -9 random gateways 10 times, the bottom one included, and restart them; (2) cut
// and restore the links between the gateways 20 times through loopback proxies. The root must receive every
// acknowledged message, first copies in per-device order; copies a leaf sent again after a lost PUBACK are
// counted (they carry a new Strata id from the leaf's gateway), a Strata message arriving twice fails.
//
// The faults come from a fixed seed (STRATA_CHAOS_SEED, default 2026) so CI replays the same run. CI: 20k
// messages during the kills and 10k during the cuts; STRATA_SOAK=1: 1M and 200k.
import "reflect-metadata";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { buildTree, treeUnavailable, type Tree, type TreeGateway } from "../support/tree.js";
import { startLinkProxy, type LinkProxy } from "../support/link-proxy.js";
import { checkDelivery, describeDelivery, MqttLeaf, seededRandom } from "../support/chaos.js";

const skip = treeUnavailable();
const SOAK = process.env.STRATA_SOAK === "1";
const SEED = Number(process.env.STRATA_CHAOS_SEED ?? 2026);
const SUBNET = "127.77.20";
const LEAVES = 10;
const WINDOW = 8;
const KILL_PER_LEAF = (SOAK ? 1_000_000 : 20_000) / LEAVES;
const CUT_PER_LEAF = (SOAK ? 200_000 : 10_000) / LEAVES;
const KILLS = 10;
const CUTS = 20;
const CHAIN = ["root", "gw1", "gw2", "gw3", "gw4"];
const BOTTOM = "gw4";

let tree: Tree;
const proxies = new Map<string, LinkProxy>(); // child id → the proxy in front of its parent
let leaves: MqttLeaf[] = [];
const rnd = seededRandom(SEED);

before(async () => {
  if (skip) return;
  // Each child dials its parent through a proxy on the parent's address (so the parent's certificate matches).
  for (let i = 1; i < CHAIN.length; i++) {
    const parentAddress = `${SUBNET}.${i}`;
    proxies.set(CHAIN[i]!, await startLinkProxy({ host: parentAddress, targetHost: parentAddress, targetPort: 5671 }));
  }
  tree = await buildTree({
    subnet: SUBNET,
    gateways: CHAIN.map((id, i) => (i === 0 ? { id } : { id, parent: CHAIN[i - 1]!, parentAmqpPort: proxies.get(id)!.port })),
    leaves: Array.from({ length: LEAVES }, (_, i) => ({ id: `chaos-${i}`, gateway: BOTTOM })),
  });
  await tree.startAll();
  const bottom = tree.gw(BOTTOM);
  leaves = await Promise.all(Array.from({ length: LEAVES }, (_, i) =>
    MqttLeaf.open({ id: `chaos-${i}`, hub: tree.hub, key: tree.keys.get(`chaos-${i}`)!, host: bottom.address, caPem: tree.caPem })));
});

after(async () => {
  for (const l of leaves) await l.close();
  await tree?.cleanup();
  for (const p of proxies.values()) await p.close();
});

/** Sends seqs [from, to) from every leaf; `progress` resolves once that many were acknowledged in all. */
function sendAll(from: number, to: number) {
  let acked = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const onAck = () => {
    acked++;
    for (const w of [...waiters]) if (acked >= w.n) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  const done = Promise.all(leaves.map((l) => l.send(from, to, WINDOW, onAck)));
  return {
    done,
    progress: (n: number) => (acked >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
  };
}

/** Restarts a killed gateway and waits until it runs (and, for a child, its upstream link is up again). */
async function restart(g: TreeGateway): Promise<void> {
  const mark = g.lines.length;
  await g.start();
  // start() may match the previous run's "is running" line: wait for this run's own.
  await g.waitForLine((l) => l.includes(`gateway ${g.id} is running`), 30_000, "restart", mark);
  if (g.parent) await g.waitUpstream(30_000, mark);
}

/** Follows the root's telemetry until every acknowledged seq in [from, to) arrived (or the timeout). */
async function rootReceived(from: number, to: number, timeoutMs: number) {
  const wanted = new Set<string>();
  for (const l of leaves) for (const n of l.acked) if (n >= from && n < to) wanted.add(`${l.id}:${n}`);
  let scanned = 0;
  return tree.followTelemetry((records) => {
    for (; scanned < records.length; scanned++) {
      const r = records[scanned]!;
      wanted.delete(`${r.deviceId}:${r.properties.seq}`);
    }
    return wanted.size === 0;
  }, timeoutMs);
}

function ackedByLeaf(): Map<string, number[]> {
  return new Map(leaves.map((l) => [l.id, l.acked]));
}

test(`kill -9 random gateways ${KILLS} times (seed ${SEED}) while ${LEAVES * KILL_PER_LEAF} QoS 1 messages flow: every acknowledged one reaches the root, in order`, { skip, timeout: SOAK ? 3_600_000 : 240_000 }, async (t) => {
  const total = LEAVES * KILL_PER_LEAF;
  const victims = Array.from({ length: KILLS }, () => rnd.pick(CHAIN));
  // The bottom gateway holds the leaves' sessions: it is killed at least twice.
  for (const at of [rnd.int(0, 4), rnd.int(5, KILLS - 1)]) victims[at] = BOTTOM;
  t.diagnostic(`victims: ${victims.join(" ")}`);
  const started = performance.now();
  const load = sendAll(0, KILL_PER_LEAF);
  for (let k = 0; k < KILLS; k++) {
    // 1. Spread the kills over the run: the k-th comes once (k+1)/(KILLS+2) of the messages were acknowledged.
    await load.progress(Math.floor(((k + 1) * total) / (KILLS + 2)));
    const g = tree.gw(victims[k]!);
    await g.kill();
    // 2. Down for a while (the fault's length, not a wait for something), then back.
    await new Promise((r) => setTimeout(r, rnd.int(100, 1500)));
    await restart(g);
  }
  await load.done;
  const sentMs = performance.now() - started;
  // 3. Every acknowledged message reaches the root.
  const records = await rootReceived(0, KILL_PER_LEAF, SOAK ? 1_800_000 : 120_000);
  const report = checkDelivery(records, ackedByLeaf(), 0, KILL_PER_LEAF);
  t.diagnostic(`sent and acknowledged ${total} in ${(sentMs / 1000).toFixed(1)} s; root done after ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
    `leaf reconnects ${leaves.reduce((s, l) => s + l.reconnects, 0)}; ${describeDelivery(report)}`);
  assert.equal(leaves.reduce((s, l) => s + l.acked.length, 0), total);
  assert.deepEqual([...report.missing], [], describeDelivery(report));
  assert.deepEqual([...report.outOfOrder], [], describeDelivery(report));
  assert.deepEqual(report.hopDuplicates, [], describeDelivery(report));
  // A leaf resends at most its window after each crash of its gateway.
  assert.ok(report.deviceResends <= victims.filter((v) => v === BOTTOM).length * LEAVES * WINDOW, describeDelivery(report));
});

test(`cut and restore the links between the gateways ${CUTS} times (seed ${SEED}) while messages flow: every acknowledged one reaches the root once, in order`, { skip, timeout: SOAK ? 3_600_000 : 240_000 }, async (t) => {
  const from = KILL_PER_LEAF;
  const to = KILL_PER_LEAF + CUT_PER_LEAF;
  const total = LEAVES * CUT_PER_LEAF;
  const children = CHAIN.slice(1);
  const started = performance.now();
  const load = sendAll(from, to);
  const cuts: string[] = [];
  for (let c = 0; c < CUTS; c++) {
    await load.progress(Math.floor(((c + 1) * total) / (CUTS + 2)));
    const child = tree.gw(rnd.pick(children));
    const proxy = proxies.get(child.id)!;
    const mark = child.lines.length;
    // 1. Cut: both sockets reset, new connections refused.
    proxy.cut();
    await new Promise((r) => setTimeout(r, rnd.int(50, 1000)));
    // 2. Restore, and wait for the child to be linked again before the next fault.
    proxy.restore();
    await child.waitUpstream(30_000, mark);
    cuts.push(child.id);
  }
  await load.done;
  const records = await rootReceived(from, to, SOAK ? 1_800_000 : 120_000);
  const report = checkDelivery(records, ackedByLeaf(), from, to);
  t.diagnostic(`links cut: ${cuts.join(" ")}; proxy connections accepted: ${[...proxies].map(([id, p]) => `${id} ${p.accepted}`).join(", ")}; ` +
    `${total} acknowledged, root done after ${((performance.now() - started) / 1000).toFixed(1)} s; ${describeDelivery(report)}`);
  assert.deepEqual([...report.missing], [], describeDelivery(report));
  assert.deepEqual([...report.outOfOrder], [], describeDelivery(report));
  assert.deepEqual(report.hopDuplicates, [], describeDelivery(report));
  // The leaves' gateway never went down: no leaf had a reason to resend, so every message arrived exactly once.
  assert.equal(report.deviceResends, 0, describeDelivery(report));
  assert.equal(report.received, total);
});
