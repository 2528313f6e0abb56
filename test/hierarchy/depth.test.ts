// Depth and width. (1) A chain of 8 gateways (root + 7 below, 127.77.21.x): messages from leaves on the bottom
// gateway reach the root, each once and in per-device order. (2) Width: a root serving 1000 leaf identities
// behind one child link (127.77.22.x): 1000 MQTT.js leaves on the child each send a few messages, the child
// opens its per-identity upstream links lazily over its one connection, the root gets every message; the
// resident memory of both processes is recorded in the test output.
import "reflect-metadata";
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { buildTree, treeUnavailable, type Tree } from "../support/tree.js";
import { checkDelivery, describeDelivery, MqttLeaf, rssMiB } from "../support/chaos.js";

const skip = treeUnavailable();
const SOAK = process.env.STRATA_SOAK === "1";

describe("depth", { skip }, () => {
  const DEPTH = SOAK ? 12 : 8;
  const PER_LEAF = 300;
  let tree: Tree | undefined;
  const leaves: MqttLeaf[] = [];
  after(async () => {
    for (const l of leaves) await l.close();
    await tree?.cleanup();
  });

  test(`a chain of ${DEPTH} gateways: messages from the bottom reach the root once, in order`, { timeout: 180_000 }, async (t) => {
    const chain = Array.from({ length: DEPTH }, (_, i) => (i === 0 ? "root" : `gw${i}`));
    const bottom = chain.at(-1)!;
    tree = await buildTree({
      subnet: "127.77.21",
      gateways: chain.map((id, i) => (i === 0 ? { id } : { id, parent: chain[i - 1]! })),
      leaves: [{ id: "deep-a", gateway: bottom }, { id: "deep-b", gateway: bottom }],
    });
    const started = performance.now();
    await tree.startAll();
    const upMs = performance.now() - started;
    for (const id of ["deep-a", "deep-b"]) {
      leaves.push(await MqttLeaf.open({ id, hub: tree.hub, key: tree.keys.get(id)!, host: tree.gw(bottom).address, caPem: tree.caPem }));
    }
    const sendStart = performance.now();
    await Promise.all(leaves.map((l) => l.send(0, PER_LEAF, 10)));
    const records = await tree.followTelemetry((r) => r.length >= 2 * PER_LEAF, 120_000);
    const e2eMs = performance.now() - sendStart;
    const report = checkDelivery(records, new Map(leaves.map((l) => [l.id, l.acked])), 0, PER_LEAF);
    t.diagnostic(`${DEPTH} gateways up in ${(upMs / 1000).toFixed(1)} s; ${2 * PER_LEAF} messages at the root ${(e2eMs / 1000).toFixed(1)} s after the first send; ${describeDelivery(report)}`);
    assert.deepEqual([...report.missing], []);
    assert.deepEqual([...report.outOfOrder], []);
    assert.equal(report.received, 2 * PER_LEAF, describeDelivery(report));
    for (const r of records) assert.equal(records.filter((x) => x.messageId === r.messageId).length, 1, `${r.messageId} once`);
  });
});

describe("width", { skip }, () => {
  const IDENTITIES = 1000;
  const PER_LEAF = 3;
  const CONNECT_AT_ONCE = 50;
  let tree: Tree | undefined;
  const leaves: MqttLeaf[] = [];
  after(async () => {
    await Promise.all(leaves.map((l) => l.close()));
    await tree?.cleanup();
  });

  test(`a parent serving ${IDENTITIES} identities behind one child link: every message arrives; memory recorded`, { timeout: 240_000 }, async (t) => {
    const ids = Array.from({ length: IDENTITIES }, (_, i) => `wide-${String(i).padStart(4, "0")}`);
    tree = await buildTree({
      subnet: "127.77.22",
      gateways: [{ id: "root" }, { id: "child", parent: "root", config: { max_clients: IDENTITIES + 10 } }],
      leaves: ids.map((id) => ({ id, gateway: "child" })),
    });
    await tree.startAll();
    const root = tree.root;
    const child = tree.gw("child");
    const rssBefore = { root: rssMiB(root.proc!.pid!), child: rssMiB(child.proc!.pid!) };
    // 1. 1000 leaves connect to the child (a bounded number of TLS handshakes at once) and send a few messages each.
    const started = performance.now();
    for (let i = 0; i < ids.length; i += CONNECT_AT_ONCE) {
      const batch = await Promise.all(ids.slice(i, i + CONNECT_AT_ONCE).map((id) =>
        MqttLeaf.open({ id, hub: tree!.hub, key: tree!.keys.get(id)!, host: child.address, caPem: tree!.caPem })));
      leaves.push(...batch);
      await Promise.all(batch.map((l) => l.send(0, PER_LEAF, 1)));
    }
    const sentMs = performance.now() - started;
    // 2. The root receives all of them.
    const total = IDENTITIES * PER_LEAF;
    const records = await tree.followTelemetry((r) => r.length >= total, 180_000);
    const doneMs = performance.now() - started;
    const report = checkDelivery(records, new Map(leaves.map((l) => [l.id, l.acked])), 0, PER_LEAF);
    const rssAfter = { root: rssMiB(root.proc!.pid!), child: rssMiB(child.proc!.pid!) };
    // 3. One connection between child and parent carried every identity: the child connected upstream once.
    const childConnects = child.lines.filter((l) => l.includes('"msg":"upstream link connected"')).length;
    t.diagnostic(`${IDENTITIES} identities × ${PER_LEAF} messages: acknowledged in ${(sentMs / 1000).toFixed(1)} s, at the root after ${(doneMs / 1000).toFixed(1)} s; ` +
      `RSS root ${rssBefore.root.toFixed(0)} → ${rssAfter.root.toFixed(0)} MiB, child ${rssBefore.child.toFixed(0)} → ${rssAfter.child.toFixed(0)} MiB ` +
      `(${IDENTITIES} MQTT clients on the child, ${IDENTITIES} identities on one upstream connection); child upstream connects ${childConnects}; ${describeDelivery(report)}`);
    assert.deepEqual([...report.missing], [], describeDelivery(report));
    assert.deepEqual([...report.outOfOrder], []);
    assert.equal(report.received, total, describeDelivery(report));
    assert.equal(new Set(records.map((r) => r.deviceId)).size, IDENTITIES);
    assert.equal(childConnects, 1, "the child kept one upstream connection");
    // A bound loose enough for CI machines, tight enough to catch per-identity state that does not scale.
    assert.ok(rssAfter.root < 1024, `root RSS ${rssAfter.root} MiB`);
  });
});
