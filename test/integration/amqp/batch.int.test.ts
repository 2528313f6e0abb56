// Batched transfers between gateways (core/upstream/batch.ts): a real UpstreamLink (the child side) against
// a real gateway's AMQP head (the parent side). The spy on IdentitySender.sendBatch only counts; the real
// method runs.
import assert from "node:assert/strict";
import { Socket } from "node:net";
import { test, type TestContext } from "node:test";
import { silentLogger, type Message } from "../../../core/index.js";
import type { Lease } from "../../../core/store/types.js";
import { UpstreamLink } from "../../../core/upstream/link.js";
import { IdentitySender } from "../../../core/upstream/sender.js";
import { amqpGateway, takeFromQueue, watchedLogger } from "./helpers.js";

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
  t: { after(fn: () => Promise<void>): void }, gw: Awaited<ReturnType<typeof amqpGateway>>, key: string, batchVersion: 1 | 2 | 3 = 3,
  extraChains: Record<string, string[]> = {},
): Promise<UpstreamLink> {
  const chains: Record<string, string[]> = { leafA: ["leafA", "child1"], leafB: ["leafB", "child1"], child1: ["child1"], ...extraChains };
  const link = new UpstreamLink({
    self: "child1", hub: gw.hubName, ca: gw.caPem, key, batchVersion, identities: { authChain: (id) => chains[id] }, logger: silentLogger(),
    parent: { hostname: "localhost", address: gw.address, amqp_port: gw.port("amqp"), https_port: gw.port("https"), transport: "amqps" },
  });
  t.after(() => link.stop());
  link.start();
  await link.whenConnected();
  return link;
}

/** A parent gateway with child1 (edge) and its leaves leafA and leafB, child1's link to it, and a transfer count. */
async function childOfTwoLeaves(t: TestContext, version: 1 | 2 | 3) {
  const seen = countBatches(t);
  const gw = await amqpGateway(t);
  const child = await gw.addDevice("child1", { edge: true });
  await gw.addDevice("leafA", { parent: "child1" });
  await gw.addDevice("leafB", { parent: "child1" });
  return { seen, gw, link: await childLink(t, gw, child.key, version) };
}

for (const version of [1, 2, 3] as const) test(`batch version ${version}: a child sends first attempts in batches; the parent stores every message once, in order per identity, with every field`, async (t) => {
  const { seen, gw, link } = await childOfTwoLeaves(t, version);

  const leases = Array.from({ length: 300 }, (_, i) => lease(i % 3 === 0 ? "leafB" : "leafA", i));
  assert.equal(link.state().batchVersion, version, "the version in use is visible in the link's state");
  const outcomes = await link.deliver(leases, new AbortController().signal);
  assert.deepEqual(new Set(outcomes), new Set(["delivered"]));
  // Versions 1 and 2 go per identity (at least a transfer each); version 3 mixes them: 300 / 64 → 5 transfers.
  if (version === 3) assert.equal(seen.batches, 5, "one stream of full transfers for both identities");
  else assert.ok(seen.batches >= 6 && seen.batches <= 10, `300 messages of two identities in a few batches, not ${seen.batches}`);
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

test("version 3: a record from outside the child's scope gets the whole transfer refused; sent again alone, only that message is refused", async (t) => {
  const seen = countBatches(t);
  const log = watchedLogger();
  const gw = await amqpGateway(t, { logger: log.logger });
  const child = await gw.addDevice("child1", { edge: true });
  await gw.addDevice("leafA", { parent: "child1" });
  // The child believes "stranger" is below it; the parent knows it under another gateway.
  await gw.addDevice("other", { edge: true });
  await gw.addDevice("stranger", { parent: "other" });
  const link = await childLink(t, gw, child.key, 3, { stranger: ["stranger", "child1"] });

  const leases = Array.from({ length: 20 }, (_, i) => lease(i === 7 ? "stranger" : "leafA", i));
  const outcomes = await link.deliver(leases, new AbortController().signal);
  assert.equal(seen.batches, 1);
  assert.deepEqual(new Set(outcomes), new Set(["retry"]), "the refused transfer is no verdict on any one message");
  const line = await log.waitFor((l) => l.msg === "amqp batch refused; the child sends each again alone");
  assert.equal(line.identity, "child1");
  assert.match(String(line.description), /record from stranger: not in child1's scope/);
  assert.equal((await gw.gw.store.queue("$upstream").lease(50)).length, 0, "nothing of the refused transfer was stored");

  // Retried (attempts + 1): each goes alone on its identity's link.
  const again = await link.deliver(leases.map((l) => ({ ...l, attempts: 1 })), new AbortController().signal);
  assert.equal(seen.batches, 1, "retries are never batched");
  assert.notEqual(again[7], "delivered", "the stranger's message is refused on its own link");
  assert.deepEqual(again.filter((_, i) => i !== 7), Array.from({ length: 19 }, () => "delivered"));
  const stored = await takeFromQueue(gw, "$upstream", 19);
  assert.deepEqual(stored.map((l) => Number(l.message.properties.n)), Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 7));
  assert.ok(stored.every((l) => l.message.source === "leafA"));
});

test("version 3: the child's own messages and its leaves' share one transfer; each is stored for its own source", async (t) => {
  const { seen, gw, link } = await childOfTwoLeaves(t, 3);
  const leases = [lease("child1", 0), lease("leafA", 1), lease("leafB", 2), lease("leafA", 3)];
  assert.deepEqual(await link.deliver(leases, new AbortController().signal), ["delivered", "delivered", "delivered", "delivered"]);
  assert.equal(seen.batches, 1);
  const stored = await takeFromQueue(gw, "$upstream", 4);
  assert.deepEqual(stored.map((l) => [l.message.source, Number(l.message.properties.n)]).sort((a, b) => Number(a[1]) - Number(b[1])),
    [["child1", 0], ["leafA", 1], ["leafB", 2], ["leafA", 3]]);
});

test("version 3: a batch pipelined behind one that went per identity (it held a retry) goes per identity too, and is delivered", async (t) => {
  const { seen, gw, link } = await childOfTwoLeaves(t, 3);
  const signal = new AbortController().signal;
  // A batch before, as a drain always has one out before it pipelines: it went mixed (one transfer).
  assert.deepEqual(await link.deliver([lease("leafA", 100), lease("leafB", 101)], signal), ["delivered", "delivered"]);
  assert.equal(seen.batches, 1);
  // The first batch holds a retried message: per identity (the retry alone, the rest in version 2 batches).
  const first = [lease("leafA", 0, 32, 1), ...Array.from({ length: 9 }, (_, i) => lease(i % 2 ? "leafA" : "leafB", i + 1))];
  const second = Array.from({ length: 10 }, (_, i) => lease(i % 2 ? "leafA" : "leafB", i + 10));
  // As the drain hands them over: the first, then (after its own await of the next lease) the pipelined one.
  const pending = link.deliver(first, signal);
  await Promise.resolve();
  const [a, b] = await Promise.all([pending, link.deliver(second, signal, { pipelined: true })]);
  assert.deepEqual(new Set(a), new Set(["delivered"]));
  assert.deepEqual(new Set(b), new Set(["delivered"]), "not refused: a refusal here turns every batch after a retry into retries");
  assert.equal(seen.batches, 5, "two identities per batch, each batch per identity");
  const stored = (await takeFromQueue(gw, "$upstream", 22)).filter((l) => Number(l.message.properties.n) < 100);
  assert.equal(stored.length, 20);
  for (const source of ["leafA", "leafB"]) {
    const ns = stored.filter((l) => l.message.source === source).map((l) => Number(l.message.properties.n));
    assert.deepEqual(ns, [...ns].sort((x, y) => x - y), `${source} in order`);
  }
  // The next unpipelined batch of first attempts goes mixed again: one transfer.
  assert.deepEqual(new Set(await link.deliver(Array.from({ length: 6 }, (_, i) => lease(i % 2 ? "leafA" : "leafB", i + 20)), signal)), new Set(["delivered"]));
  assert.equal(seen.batches, 6);
});

test("version 3: a leaf disabled at the parent after its records were taken is refused in the next batch (no stale check)", async (t) => {
  const { seen, gw, link } = await childOfTwoLeaves(t, 3);
  const signal = new AbortController().signal;
  assert.deepEqual(await link.deliver([lease("leafA", 0), lease("leafB", 1)], signal), ["delivered", "delivered"]);
  const leafA = gw.gw.identities.get("leafA")!;
  await gw.gw.identities.put({ ...leafA, status: "disabled" });
  const outcomes = await link.deliver([lease("leafA", 2), lease("leafB", 3)], signal);
  assert.equal(seen.batches, 2);
  assert.deepEqual(outcomes, ["retry", "retry"], "the transfer naming a disabled leaf is refused whole");
  // Alone, on their own links: leafB's message is taken, leafA's refused.
  const again = await link.deliver([lease("leafA", 2, 32, 1), lease("leafB", 3, 32, 1)], signal);
  assert.notEqual(again[0], "delivered");
  assert.equal(again[1], "delivered");
  const stored = await takeFromQueue(gw, "$upstream", 3);
  assert.deepEqual(stored.map((l) => Number(l.message.properties.n)).sort(), [0, 1, 3]);
});

test("the child's AMQP socket to its parent and the parent's accepted socket run with TCP_NODELAY (no frame waits for a delayed ACK)", async (t) => {
  const calls: boolean[] = [];
  const original = Socket.prototype.setNoDelay;
  Socket.prototype.setNoDelay = function (this: Socket, on?: boolean) {
    calls.push(on !== false);
    return original.call(this, on);
  };
  t.after(() => (Socket.prototype.setNoDelay = original));
  const { link } = await childOfTwoLeaves(t, 3);
  assert.equal(link.state().status, "connected");
  assert.ok(calls.filter(Boolean).length >= 2, `setNoDelay(true) on both ends, saw ${JSON.stringify(calls)}`);
});

test("version 3: a message big enough to be refused for its size travels alone, so the messages after it are not held back", async (t) => {
  const seen = countBatches(t);
  const gw = await amqpGateway(t, { config: { plugins: { amqp: { max_message_bytes: 40 * 1024 } } } });
  const child = await gw.addDevice("child1", { edge: true });
  await gw.addDevice("leafA", { parent: "child1" });
  const link = await childLink(t, gw, child.key, 3);
  // 100 kB: over the parent's 40 KiB, under a transfer's 128 KiB — it would share a transfer with what follows.
  const leases = [lease("leafA", 0), lease("leafA", 1, 100_000), lease("leafA", 2), lease("leafA", 3)];
  const outcomes = await link.deliver(leases, new AbortController().signal);
  assert.deepEqual(outcomes, ["delivered", "retry", "delivered", "delivered"]);
  assert.equal(seen.batches, 3, "before, the big one alone, after");
});
