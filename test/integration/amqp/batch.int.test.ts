// Batched transfers between gateways (core/upstream/batch.ts): a real UpstreamLink (the child side) against
// a real gateway's AMQP head (the parent side). The spy on IdentitySender.sendBatch only counts; the real
// method runs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger, type Message } from "../../../core/index.js";
import type { Lease } from "../../../core/store/types.js";
import { UpstreamLink } from "../../../core/upstream/link.js";
import { IdentitySender } from "../../../core/upstream/sender.js";
import { amqpGateway, takeFromQueue } from "./helpers.js";

function lease(source: string, n: number, bodyBytes = 32, attempts = 0): Lease {
  const now = Date.now();
  const message: Message = {
    id: `child1:${source}:${n}`, origin: "child1", source, enqueuedTime: now, deadline: now + 3_600_000, priority: 0,
    body: Buffer.alloc(bodyBytes, n % 256), properties: { n: String(n) }, systemProperties: { connectionDeviceId: source },
  };
  return { message, endpoint: "$upstream", attempts };
}

function countBatches(t: { after(fn: () => void): void }): { batches: number; messages: number } {
  const seen = { batches: 0, messages: 0 };
  const original = IdentitySender.prototype.sendBatch;
  IdentitySender.prototype.sendBatch = function (batch, now) {
    seen.batches++;
    seen.messages += batch.count;
    return original.call(this, batch, now);
  };
  t.after(() => (IdentitySender.prototype.sendBatch = original));
  return seen;
}

async function childLink(
  t: { after(fn: () => Promise<void>): void }, gw: Awaited<ReturnType<typeof amqpGateway>>, key: string, batchVersion: 1 | 2 = 2,
): Promise<UpstreamLink> {
  const chains: Record<string, string[]> = { leafA: ["leafA", "child1"], leafB: ["leafB", "child1"], child1: ["child1"] };
  const link = new UpstreamLink({
    self: "child1", hub: gw.hubName, ca: gw.caPem, key, batchVersion, identities: { authChain: (id) => chains[id] }, logger: silentLogger(),
    parent: { hostname: "localhost", address: gw.address, amqp_port: gw.port("amqp"), https_port: gw.port("https"), transport: "amqps" },
  });
  t.after(() => link.stop());
  link.start();
  await link.whenConnected();
  return link;
}

for (const version of [1, 2] as const) test(`batch version ${version}: a child sends first attempts in batches; the parent stores every message once, in order per identity, with every field`, async (t) => {
  const seen = countBatches(t);
  const gw = await amqpGateway(t);
  const child = await gw.addDevice("child1", { edge: true });
  await gw.addDevice("leafA", { parent: "child1" });
  await gw.addDevice("leafB", { parent: "child1" });
  const link = await childLink(t, gw, child.key, version);

  const leases = Array.from({ length: 300 }, (_, i) => lease(i % 3 === 0 ? "leafB" : "leafA", i));
  const outcomes = await link.deliver(leases, new AbortController().signal);
  assert.deepEqual(new Set(outcomes), new Set(["delivered"]));
  assert.ok(seen.batches >= 2 && seen.batches <= 10, `300 messages of two identities in a few batches, not ${seen.batches}`);
  assert.equal(seen.messages, 300);

  const stored = await takeFromQueue(gw, "$upstream", 300);
  assert.equal(stored.length, 300);
  const sent = leases.find((l) => l.message.id === stored[0]!.message.id)!.message;
  const got = stored[0]!.message;
  assert.deepEqual(
    { id: got.id, origin: got.origin, source: got.source, enqueuedTime: got.enqueuedTime, deadline: got.deadline, properties: got.properties, body: got.body },
    { id: sent.id, origin: sent.origin, source: sent.source, enqueuedTime: sent.enqueuedTime, deadline: sent.deadline, properties: sent.properties, body: sent.body },
  );
  assert.equal(got.systemProperties.connectionDeviceId, sent.source);
  for (const source of ["leafA", "leafB"]) {
    const ns = stored.filter((l) => l.message.source === source).map((l) => Number(l.message.properties.n));
    assert.deepEqual(ns, [...ns].sort((a, b) => a - b), `${source} in order`);
  }
  // Resent (e.g. after a lost disposition): accepted again, stored once.
  assert.deepEqual(new Set(await link.deliver(leases.slice(0, 50), new AbortController().signal)), new Set(["delivered"]));
  assert.equal((await gw.gw.store.queue("$upstream").lease(10)).length, 0, "duplicates dropped by id");
});

test("a batch the parent refuses is sent again one by one, so the refusal lands on its own message only", async (t) => {
  const seen = countBatches(t);
  // The parent takes at most 40 KiB per transfer.
  const gw = await amqpGateway(t, { config: { plugins: { amqp: { max_message_bytes: 40 * 1024 } } } });
  const child = await gw.addDevice("child1", { edge: true });
  await gw.addDevice("leafA", { parent: "child1" });
  const link = await childLink(t, gw, child.key);

  // 60 messages of 1 KiB: one batch of ~60 KiB, over the parent's 40 KiB limit as a whole.
  const first = Array.from({ length: 60 }, (_, i) => lease("leafA", i, 1024));
  const outcomes = await link.deliver(first, new AbortController().signal);
  assert.ok(seen.batches >= 1);
  assert.deepEqual(new Set(outcomes), new Set(["retry"]), "a refused batch is no verdict on any one message");
  // The drain hands them back with attempts + 1: each goes alone and is accepted.
  const again = first.map((l) => ({ ...l, attempts: 1 }));
  const batchesBefore = seen.batches;
  assert.deepEqual(new Set(await link.deliver(again, new AbortController().signal)), new Set(["delivered"]));
  assert.equal(seen.batches, batchesBefore, "retries are never batched");
  const stored = await takeFromQueue(gw, "$upstream", 60);
  assert.deepEqual(stored.map((l) => Number(l.message.properties.n)), Array.from({ length: 60 }, (_, i) => i));
});
