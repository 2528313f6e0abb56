// A root with two child gateways, each with a leaf: real `strata start` processes on 127.77.1.x.
import "reflect-metadata";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { signSas } from "../../core/identity/sas.js";
import { CbsChannel } from "../../core/upstream/cbs.js";
import { abandon, dial } from "../../core/upstream/dial.js";
import { IdentitySender } from "../../core/upstream/sender.js";
import { toAmqpMessage } from "../../core/upstream/convert.js";
import type { Message } from "../../core/message.js";
import { buildTree, treeUnavailable, type Tree } from "../support/tree.js";
import { openLeaf, tally, type Leaf } from "./leaves.js";

const skip = treeUnavailable();
let tree: Tree;
const leaves: Leaf[] = [];

before(async () => {
  if (skip) return;
  tree = await buildTree({
    subnet: "127.77.1",
    gateways: [{ id: "root" }, { id: "gwA", parent: "root" }, { id: "gwB", parent: "root", transport: "wss" }],
    leaves: [{ id: "leafA", gateway: "gwA" }, { id: "leafB", gateway: "gwB" }],
  });
  await tree.startAll();
});

after(async () => {
  for (const l of leaves) await l.close();
  await tree?.cleanup();
});

test("leaves under two children reach the root exactly once, with their own identity (amqps and wss links)", { skip }, async () => {
  assert.equal((await tree.gw("gwA").waitUpstream()).transport, "amqps");
  assert.equal((await tree.gw("gwB").waitUpstream()).transport, "wss");
  const a = await openLeaf("leafA", tree.leafConnectionString("leafA"), "mqtt", tree.caPem);
  const b = await openLeaf("leafB", tree.leafConnectionString("leafB"), "amqp", tree.caPem);
  leaves.push(a, b);
  await Promise.all([a.send(0, 1000, 10), b.send(0, 300, 10)]);
  const records = await tree.followTelemetry((r) => r.length >= 1300, 60_000);
  const { seqs, duplicates } = tally(records);
  assert.deepEqual(duplicates, []);
  assert.equal(records.length, 1300);
  assert.equal(seqs.get("leafA")?.length, 1000);
  assert.equal(seqs.get("leafB")?.length, 300);
  assert.deepEqual(new Set(seqs.get("leafA")), new Set(Array.from({ length: 1000 }, (_, i) => i)));
  const one = records.find((r) => r.deviceId === "leafB")!;
  assert.equal(one.moduleId, null);
  assert.match(one.messageId ?? "", /^leafB-\d+$/);
});

test("the root refuses forged auth chains from an authenticated child", { skip }, async (t) => {
  const root = tree.root;
  const { connection } = await dial(
    { hostname: root.address, amqpPort: 5671, httpsPort: 443, ca: tree.caPem, containerId: "forger", idleTimeoutMs: 20_000 },
    "amqps",
    10_000,
  );
  t.after(() => abandon(connection));
  const resource = `${tree.hub}/devices/gwA`;
  await new CbsChannel(connection).putToken({ resource, token: signSas({ resource, key: tree.keys.get("gwA")!, expirySecs: Math.floor(Date.now() / 1000) + 600 }) }, 10_000);

  // A link is judged by what happens to one message on it: the root attaches first and detaches with an
  // error when it refuses, so the message's settlement is the unambiguous answer.
  let n = 0;
  const attach = async (target: string, chain: string[]) => {
    const sender = new IdentitySender(connection, target, chain, Date.now());
    const now = Date.now();
    const message: Message = {
      id: `forger:${++n}`, origin: "gwA", source: target, enqueuedTime: now, deadline: now + 60_000, priority: 0,
      body: Buffer.from("{}"), properties: { probe: "1" }, systemProperties: { messageId: `probe-${n}` },
    };
    const settled = await sender.send(toAmqpMessage(message), now);
    return settled.kind === "accepted" ? "open" : settled.kind === "rejected" ? (settled.refusal.condition ?? "refused") : "lost";
  };
  // 1. gwA's own leaf through gwA: allowed (the control).
  assert.equal(await attach("leafA", ["leafA", "gwA"]), "open");
  // 2. A leaf of the other subtree, claimed through gwA: refused.
  assert.equal(await attach("leafB", ["leafB", "gwA"]), "amqp:unauthorized-access");
  // 3. A chain naming gwB as the actor, which has not authenticated on this connection: refused.
  assert.equal(await attach("leafB", ["leafB", "gwB"]), "amqp:unauthorized-access");
  // 4. A sibling gateway claimed as if it were below gwA: refused.
  assert.equal(await attach("gwB", ["gwB", "gwA"]), "amqp:unauthorized-access");
});
