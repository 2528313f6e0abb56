import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../../../core/log.js";
import { LevelStore } from "../../../core/store/index.js";
import { msg, nOf, openStore, tempDir } from "./helpers.js";

test("messages of one source come out in the order they went in", async (t) => {
  const store = await openStore(t);
  // Concurrent enqueues from one source (a device pipelining QoS 1 publishes) keep their call order.
  await Promise.all(Array.from({ length: 200 }, (_, i) => store.enqueue(msg("d1", i), ["up"])));
  const leases = await store.queue("up").lease(1000);
  assert.deepEqual(leases.map((l) => nOf(l.message)), Array.from({ length: 200 }, (_, i) => i));
  assert.equal(leases[0].endpoint, "up");
  assert.equal(leases[0].attempts, 0);
});

test("a leased message is not handed out again until released, and comes back first with attempts+1", async (t) => {
  const store = await openStore(t);
  for (let i = 0; i < 5; i++) await store.enqueue(msg("d1", i), ["up"]);
  const q = store.queue("up");
  const first = await q.lease(2);
  assert.deepEqual(first.map((l) => nOf(l.message)), [0, 1]);
  const next = await q.lease(2);
  assert.deepEqual(next.map((l) => nOf(l.message)), [2, 3]);
  q.release(first);
  const again = await q.lease(10);
  assert.deepEqual(again.map((l) => nOf(l.message)), [0, 1, 4]);
  assert.deepEqual(again.map((l) => l.attempts), [1, 1, 0]);
  assert.equal(q.depth(), 5, "leased messages still count in depth");
});

test("ack removes durably; enqueue to two endpoints lands in both", async (t) => {
  const store = await openStore(t);
  await store.enqueue(msg("d1", 0), ["a", "b"]);
  const a = await store.queue("a").lease(10);
  await store.queue("a").ack(a);
  assert.equal(store.queue("a").depth(), 0);
  assert.equal(store.queue("b").depth(), 1);
  const s = store.stats();
  assert.equal(s.appended, 1);
  assert.equal(s.acked, 1);
  assert.deepEqual(Object.keys(s.queues).sort(), ["a", "b"]);
});

test("reopen: every unacked message is available again, in order, with acked ones gone", async (t) => {
  const path = join(tempDir(t), "db");
  const opts = { path, gatewayId: "gw1", quotaBytes: 1 << 26, logger: silentLogger(), sweepIntervalMs: 0 };
  const s1 = new LevelStore(opts);
  await s1.open();
  for (let i = 0; i < 50; i++) await s1.enqueue(msg(`d${i % 3}`, i), ["up"]);
  const q1 = s1.queue("up");
  const leased = await q1.lease(20);
  await q1.ack(leased.slice(0, 10));
  // The other 10 stay leased (in flight) when the process stops: they must come back.
  const acked = new Set(leased.slice(0, 10).map((l) => nOf(l.message)));
  const usedBefore = s1.stats().usedBytes;
  await s1.close();

  const s2 = new LevelStore(opts);
  await s2.open();
  t.after(() => s2.close());
  assert.equal(s2.stats().usedBytes, usedBefore, "quota usage recovered on reopen");
  const all = await s2.queue("up").lease(1000);
  assert.equal(all.length, 40);
  for (const src of ["d0", "d1", "d2"]) {
    const got = all.filter((l) => l.message.source === src).map((l) => nOf(l.message));
    const want = Array.from({ length: 50 }, (_, i) => i).filter((i) => `d${i % 3}` === src && !acked.has(i));
    assert.deepEqual(got, want, `order of ${src}`);
  }
  assert.ok(all.every((l) => l.message.body.length > 0 && JSON.parse(l.message.body.toString()).n === nOf(l.message)));
});

test("waitAvailable resolves on enqueue and on abort", async (t) => {
  const store = await openStore(t);
  const q = store.queue("up");
  let woke = false;
  const waiting = q.waitAvailable().then(() => { woke = true; });
  await Promise.resolve();
  assert.equal(woke, false);
  await store.enqueue(msg("d1", 0), ["up"]);
  await waiting;
  assert.equal(woke, true);
  await q.lease(1);
  const ac = new AbortController();
  const aborted = q.waitAvailable(ac.signal);
  ac.abort();
  await aborted;
});

test("concurrent appends share synced batches (group commit)", async (t) => {
  const store = await openStore(t);
  const before = store.batchesWritten;
  await Promise.all(Array.from({ length: 300 }, (_, i) => store.enqueue(msg(`d${i % 30}`, i), ["up"])));
  const batches = store.batchesWritten - before;
  assert.ok(batches < 30, `300 concurrent appends took ${batches} batches`);
  assert.equal(store.queue("up").depth(), 300);
});

test("nextId: gatewayId prefix, increasing, never reused after reopen", async (t) => {
  const path = join(tempDir(t), "db");
  const opts = { path, gatewayId: "gwX", quotaBytes: 1 << 26, logger: silentLogger(), sweepIntervalMs: 0, idBlock: 100 };
  const s1 = new LevelStore(opts);
  await s1.open();
  const ids = Array.from({ length: 250 }, () => s1.nextId());
  assert.ok(ids.every((id) => id.startsWith("gwX:")));
  const seqs = ids.map((id) => Number(id.split(":")[1]));
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]));
  // One enqueue so that the batch carrying the current reservation is durable, as in real use.
  await s1.enqueue(msg("d", 0, { id: ids.at(-1) }), ["up"]);
  await s1.close();
  const s2 = new LevelStore(opts);
  await s2.open();
  t.after(() => s2.close());
  const after = Number(s2.nextId().split(":")[1]);
  assert.ok(after > Math.max(...seqs), `${after} must exceed ${Math.max(...seqs)}`);
});

test("use before open and after close is a clear STRATA_STORE_CLOSED", async (t) => {
  const store = new LevelStore({ path: join(tempDir(t), "db"), gatewayId: "gw1", quotaBytes: 1000, logger: silentLogger() });
  assert.throws(() => store.nextId(), { code: "STRATA_STORE_CLOSED" });
  await store.open();
  await store.close();
  await assert.rejects(store.enqueue(msg("d", 0), ["up"]), { code: "STRATA_STORE_CLOSED" });
});

test("a store already open elsewhere fails with STRATA_STORE_OPEN naming the path", async (t) => {
  const path = join(tempDir(t), "db");
  const first = new LevelStore({ path, gatewayId: "gw1", quotaBytes: 1000, logger: silentLogger(), sweepIntervalMs: 0 });
  await first.open();
  t.after(() => first.close());
  const second = new LevelStore({ path, gatewayId: "gw1", quotaBytes: 1000, logger: silentLogger(), sweepIntervalMs: 0 });
  await assert.rejects(second.open(), (e: Error & { code?: string }) => e.code === "STRATA_STORE_OPEN" && e.message.includes(path));
});

test("acked runs leave the disk as ranges; what was queued between them, or in another endpoint, stays", async (t) => {
  const path = join(tempDir(t), "db");
  const opts = { path, gatewayId: "gw1", quotaBytes: 1 << 26, logger: silentLogger(), sweepIntervalMs: 0 };
  const s1 = new LevelStore(opts);
  await s1.open();
  // Two sources interleaved in one queue, and a second endpoint sharing every message.
  for (let i = 0; i < 200; i++) await s1.enqueue(msg(i % 2 ? "b" : "a", i), ["up", "side"]);
  const q = s1.queue("up");
  const leased = await q.lease(200);
  // Ack all but three in the middle and one at each end: the acked ones form runs around holes.
  const keep = new Set([0, 57, 58, 120, 199]);
  await q.ack(leased.filter((l) => !keep.has(nOf(l.message))));
  q.release(leased.filter((l) => keep.has(nOf(l.message))));
  // And a short run (fewer than the range threshold) on the side endpoint, deleted key by key.
  const side = s1.queue("side");
  const sideLeased = await side.lease(5);
  await side.ack(sideLeased);
  await s1.close();

  const s2 = new LevelStore(opts);
  await s2.open();
  t.after(() => s2.close());
  assert.deepEqual((await s2.queue("up").lease(500)).map((l) => nOf(l.message)).sort((x, y) => x - y), [...keep]);
  assert.equal(s2.queue("side").depth(), 195);
  const sideAcked = new Set(sideLeased.map((l) => nOf(l.message)));
  const sideLeft = (await s2.queue("side").lease(500)).map((l) => nOf(l.message)).sort((x, y) => x - y);
  assert.deepEqual(sideLeft, Array.from({ length: 200 }, (_, i) => i).filter((n) => !sideAcked.has(n)));
});
