import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../../../core/log.js";
import { LevelStore } from "../../../core/store/index.js";
import { isStrataError } from "../../../core/errors.js";
import { Clock, msg, nOf, openStore, tempDir } from "./helpers.js";

test("TTL: an expired message is never leased, is dropped and counted, and swept from disk", async (t) => {
  const clock = new Clock();
  const path = join(tempDir(t), "db");
  const store = await openStore(t, { path, now: clock.now });
  await store.enqueue(msg("d1", 0, { deadline: clock.t + 1000 }, clock.t), ["up"]);
  await store.enqueue(msg("d1", 1, { deadline: clock.t + 60_000 }, clock.t), ["up"]);
  await store.enqueue(msg("d2", 0, { deadline: clock.t + 1000 }, clock.t), ["side"]);
  // Already expired at enqueue: not written at all.
  await store.enqueue(msg("d1", 2, { deadline: clock.t - 1 }, clock.t), ["up"]);
  assert.equal(store.stats().dropped.ttl, 1);
  clock.t += 5000;
  const got = await store.queue("up").lease(10);
  assert.deepEqual(got.map((l) => nOf(l.message)), [1]);
  assert.equal(store.stats().dropped.ttl, 2);
  // "side" is never leased: the sweep finds it.
  const swept = await store.sweep();
  assert.equal(swept.ttl, 1);
  assert.equal(store.stats().dropped.ttl, 3);
  assert.equal(store.queue("side").depth(), 0);
});

test("TTL sweep frees the disk: nothing expired comes back after reopen", async (t) => {
  const clock = new Clock();
  const path = join(tempDir(t), "db");
  const opts = { path, gatewayId: "gw1", quotaBytes: 1 << 26, logger: silentLogger(), sweepIntervalMs: 0, now: clock.now };
  const s1 = new LevelStore(opts);
  await s1.open();
  for (let i = 0; i < 20; i++) await s1.enqueue(msg("d1", i, { deadline: clock.t + 1000 }, clock.t), ["up"]);
  await s1.enqueue(msg("d1", 99, { deadline: clock.t + 100_000 }, clock.t), ["up"]);
  const full = s1.stats().usedBytes;
  clock.t += 2000;
  await s1.sweep();
  const used = s1.stats().usedBytes;
  assert.ok(used < full / 10, `usedBytes ${used} after sweep, ${full} before`);
  await s1.close();
  clock.t -= 2000; // even with the clock back, the swept records are gone from disk
  const s2 = new LevelStore(opts);
  await s2.open();
  t.after(() => s2.close());
  assert.equal(s2.queue("up").depth(), 1);
  assert.equal(s2.stats().usedBytes, used);
});

test("quota: enqueue is refused with STRATA_STORE_QUOTA, nothing queued is dropped, acks make room", async (t) => {
  const store = await openStore(t, { quotaBytes: 20_000 });
  let accepted = 0;
  let refused: unknown;
  for (let i = 0; i < 1000 && !refused; i++) {
    try {
      await store.enqueue(msg("d1", i, { body: Buffer.alloc(500, 1) }), ["up"]);
      accepted++;
    } catch (e) {
      refused = e;
    }
  }
  assert.ok(isStrataError(refused, "STRATA_STORE_QUOTA"), String(refused));
  assert.match((refused as Error).message, /quota/);
  assert.ok(accepted > 20 && accepted < 40, `accepted ${accepted}`);
  const s = store.stats();
  assert.ok(s.usedBytes <= 20_000);
  assert.equal(s.dropped.quota, 1);
  assert.equal(store.queue("up").depth(), accepted, "nothing accepted was dropped");
  // Refused again while full.
  await assert.rejects(store.enqueue(msg("d1", 1000, { body: Buffer.alloc(500) }), ["up"]), { code: "STRATA_STORE_QUOTA" });
  // The upstream drains some: room again.
  const q = store.queue("up");
  await q.ack(await q.lease(5));
  await store.enqueue(msg("d1", 1001, { body: Buffer.alloc(500) }), ["up"]);
  assert.equal(q.depth(), accepted - 5 + 1);
  // The accepted ones are all there, in order.
  const rest = await q.lease(1000);
  assert.deepEqual(rest.map((l) => nOf(l.message)), [...Array.from({ length: accepted - 5 }, (_, i) => i + 5), 1001]);
});

test("dead letter: moved with reason, endpoint and time, counted, does not block the next", async (t) => {
  const clock = new Clock();
  const path = join(tempDir(t), "db");
  const opts = { path, gatewayId: "gw1", quotaBytes: 1 << 26, logger: silentLogger(), sweepIntervalMs: 0, now: clock.now };
  const s1 = new LevelStore(opts);
  await s1.open();
  for (let i = 0; i < 3; i++) await s1.enqueue(msg("d1", i, {}, clock.t), ["up"]);
  const q = s1.queue("up");
  const [poison] = await q.lease(1);
  clock.t += 5000; // dead-lettered later than it was stored: `at` is the dead-letter time
  const usedBefore = s1.stats().usedBytes;
  await q.deadLetter(poison, "rejected by parent: message too large");
  assert.equal(q.depth(), 2);
  const next = await q.lease(10);
  assert.deepEqual(next.map((l) => nOf(l.message)), [1, 2]);
  const s = s1.stats();
  assert.equal(s.deadLettered, 1);
  assert.equal(s.dropped["dead-letter"], 1);
  assert.ok(s.usedBytes > 0 && Math.abs(s.usedBytes - usedBefore) < 200, "dead letters stay counted in the quota");
  await s1.close();

  const s2 = new LevelStore(opts);
  await s2.open();
  t.after(() => s2.close());
  const dl = await s2.deadLetters();
  assert.equal(dl.length, 1);
  assert.equal(dl[0].reason, "rejected by parent: message too large");
  assert.equal(dl[0].endpoint, "up");
  assert.equal(dl[0].at, clock.t);
  assert.equal(dl[0].message.id, poison.message.id);
  assert.deepEqual(dl[0].message.body, poison.message.body);
  assert.equal(s2.stats().usedBytes, s.usedBytes);
  // Retention: old dead letters are swept and free their bytes.
  clock.t += 8 * 24 * 3600_000;
  const swept = await s2.sweep();
  assert.equal(swept.deadLetters, 1);
  assert.deepEqual(await s2.deadLetters(), []);
});

test("deadLetters(limit) returns the newest, newest last", async (t) => {
  const store = await openStore(t);
  for (let i = 0; i < 5; i++) await store.enqueue(msg("d1", i), ["up"]);
  const q = store.queue("up");
  for (const l of await q.lease(5)) await q.deadLetter(l, `r${nOf(l.message)}`);
  assert.deepEqual((await store.deadLetters(2)).map((d) => d.reason), ["r3", "r4"]);
});

test("dedup: a repeated id is reported, counted, not written — also after reopen and while the first is in flight", async (t) => {
  const path = join(tempDir(t), "db");
  const opts = { path, gatewayId: "gw1", quotaBytes: 1 << 26, logger: silentLogger(), sweepIntervalMs: 0 };
  const s1 = new LevelStore(opts);
  await s1.open();
  const m = msg("d1", 0, { id: "gw0:42" });
  const [a, b] = await Promise.all([s1.enqueue(m, ["up"]), s1.enqueue({ ...m }, ["up"])]);
  assert.deepEqual([a.duplicate, b.duplicate], [false, true]);
  const q1 = s1.queue("up");
  await q1.ack(await q1.lease(10)); // delivered and acked: the id must still be remembered
  const queued = msg("d1", 1, { id: "gw0:44" });
  await s1.enqueue(queued, ["up"]); // still queued at close: remembered from its record
  await s1.close();

  const s2 = new LevelStore(opts);
  await s2.open();
  t.after(() => s2.close());
  const used = s2.stats().usedBytes;
  assert.deepEqual(await s2.enqueue({ ...m }, ["up"]), { duplicate: true });
  assert.deepEqual(await s2.enqueue({ ...queued }, ["up"]), { duplicate: true });
  assert.equal(s2.stats().duplicates, 2);
  assert.equal(s2.queue("up").depth(), 1);
  assert.equal(s2.stats().usedBytes, used);
  assert.deepEqual(await s2.enqueue(msg("d1", 2, { id: "gw0:43" }), ["up"]), { duplicate: false });
  // Dead-lettered ids are remembered too.
  const q2 = s2.queue("up");
  for (const l of await q2.lease(10)) await q2.deadLetter(l, "poison");
  assert.deepEqual(await s2.enqueue(msg("d1", 3, { id: "gw0:43" }), ["up"]), { duplicate: true });
});

test("ids minted here leave no dedup record when acked; a child's ids do", async (t) => {
  const path = join(tempDir(t), "db");
  const opts = { path, gatewayId: "gw1", quotaBytes: 1 << 26, logger: silentLogger(), sweepIntervalMs: 0 };
  const s1 = new LevelStore(opts);
  await s1.open();
  const own = msg("d1", 0, { id: s1.nextId() });
  const child = msg("d1", 1, { id: "gw0:7" });
  await s1.enqueue(own, ["up"]);
  await s1.enqueue(child, ["up"]);
  const q = s1.queue("up");
  await q.ack(await q.lease(10));
  await s1.close();
  const { ClassicLevel } = await import("classic-level");
  const db = new ClassicLevel<string, Buffer>(path, { keyEncoding: "utf8", valueEncoding: "buffer" });
  const dedupIds = await idsOnDisk(db);
  await db.close();
  assert.deepEqual(dedupIds, ["gw0:7"]);
  // The child's id is still refused after a restart.
  const s2 = new LevelStore(opts);
  await s2.open();
  t.after(() => s2.close());
  assert.deepEqual(await s2.enqueue({ ...child }, ["up"]), { duplicate: true });
});

/** The ids in the store's dedup records (`e\0…`), oldest first. */
async function idsOnDisk(db: import("classic-level").ClassicLevel<string, Buffer>): Promise<string[]> {
  const ids: string[] = [];
  for await (const v of db.values({ gte: "e\u0000", lt: "e\u0001" })) {
    for (const [id] of JSON.parse(v.toString()) as [string, number][]) ids.push(id);
  }
  return ids;
}

async function rawDb(path: string) {
  const { ClassicLevel } = await import("classic-level");
  const db = new ClassicLevel<string, Buffer>(path, { keyEncoding: "utf8", valueEncoding: "buffer" });
  await db.open();
  return db;
}

test("dedup records: one per ack, bounded on disk by dedupMax, deleted once expired, still refusing after reopen", async (t) => {
  const clock = new Clock();
  const path = join(tempDir(t), "db");
  const opts = { path, gatewayId: "gw1", quotaBytes: 1 << 26, logger: silentLogger(), sweepIntervalMs: 0, now: clock.now, dedupMax: 25 };
  const s1 = new LevelStore(opts);
  await s1.open();
  const q = s1.queue("up");
  for (let batch = 0; batch < 3; batch++) {
    for (let i = 0; i < 10; i++) {
      const n = batch * 10 + i;
      await s1.enqueue(msg("d1", n, { id: `gw0:${n}`, deadline: clock.t + (batch === 2 ? 60_000 : 1000) }, clock.t), ["up"]);
    }
    await q.ack(await q.lease(10));
  }
  await s1.close();
  let db = await rawDb(path);
  let keys: string[] = [];
  for await (const k of db.keys({ gte: "e\u0000", lt: "e\u0001" })) keys.push(k);
  // 30 ids left in 3 acks; beyond dedupMax (25) the oldest record (10 ids) went.
  assert.equal(keys.length, 2);
  assert.deepEqual(await idsOnDisk(db), Array.from({ length: 20 }, (_, i) => `gw0:${i + 10}`));
  await db.close();

  const s2 = new LevelStore(opts);
  await s2.open();
  assert.deepEqual(await s2.enqueue(msg("d1", 15, { id: "gw0:15", deadline: clock.t + 1000 }, clock.t), ["up"]), { duplicate: true });
  assert.deepEqual(await s2.enqueue(msg("d1", 25, { id: "gw0:25", deadline: clock.t + 1000 }, clock.t), ["up"]), { duplicate: true });
  clock.t += 2000; // the second record's ids expired, the third's did not
  await s2.sweep();
  await s2.close();
  db = await rawDb(path);
  assert.deepEqual(await idsOnDisk(db), Array.from({ length: 10 }, (_, i) => `gw0:${i + 20}`));
  await db.close();
  const s3 = new LevelStore(opts);
  await s3.open();
  t.after(() => s3.close());
  assert.deepEqual(await s3.enqueue(msg("d1", 25, { id: "gw0:25", deadline: clock.t + 1000 }, clock.t), ["up"]), { duplicate: true });
  assert.deepEqual(await s3.enqueue(msg("d1", 15, { id: "gw0:15", deadline: clock.t + 1000 }, clock.t), ["up"]), { duplicate: false });
});

test("dedup: one-key-per-id records of an older store are folded into one record on open, expired ones dropped", async (t) => {
  const clock = new Clock();
  const path = join(tempDir(t), "db");
  const { encodeF64 } = await import("../../../core/store/codec.js");
  let db = await rawDb(path);
  await db.batch([
    { type: "put", key: "d\u0000gw0:1", value: encodeF64(clock.t + 60_000) },
    { type: "put", key: "d\u0000gw0:2", value: encodeF64(clock.t - 1) },
    { type: "put", key: "d\u0000gw0:3", value: encodeF64(clock.t + 60_000) },
  ]);
  await db.close();
  const opts = { path, gatewayId: "gw1", quotaBytes: 1 << 26, logger: silentLogger(), sweepIntervalMs: 0, now: clock.now };
  const s1 = new LevelStore(opts);
  await s1.open();
  assert.deepEqual(await s1.enqueue(msg("d1", 1, { id: "gw0:1" }, clock.t), ["up"]), { duplicate: true });
  assert.deepEqual(await s1.enqueue(msg("d1", 2, { id: "gw0:2" }, clock.t), ["up"]), { duplicate: false });
  await s1.close();
  db = await rawDb(path);
  const legacy: string[] = [];
  for await (const k of db.keys({ gte: "d\u0000", lt: "d\u0001" })) legacy.push(k);
  const ids = await idsOnDisk(db);
  await db.close();
  assert.deepEqual(legacy, []);
  assert.deepEqual(ids, ["gw0:1", "gw0:3"]);
  const s2 = new LevelStore(opts);
  await s2.open();
  t.after(() => s2.close());
  assert.deepEqual(await s2.enqueue(msg("d1", 3, { id: "gw0:3" }, clock.t), ["up"]), { duplicate: true });
});

test("dedup memory is bounded (oldest runs of ids first) and swept after the deadline", async (t) => {
  const clock = new Clock();
  const store = await openStore(t, { now: clock.now, dedupMax: 1500 });
  const ids = [...Array.from({ length: 1600 }, (_, i) => `o:${i}`), "odd-a", "odd-b"];
  for (const [i, id] of ids.entries()) {
    await store.enqueue(msg("d1", i, { id, deadline: clock.t + 1000, body: Buffer.alloc(0) }, clock.t), ["up"]);
  }
  // Beyond 1500 ids the oldest run (o:0 … o:1023) was forgotten; the newest are remembered.
  assert.equal((await store.enqueue(msg("d1", 1599, { id: "o:1599", deadline: clock.t + 1000 }, clock.t), ["up"])).duplicate, true);
  assert.equal((await store.enqueue(msg("d1", 1, { id: "odd-b", deadline: clock.t + 1000 }, clock.t), ["up"])).duplicate, true);
  assert.equal((await store.enqueue(msg("d1", 0, { id: "o:0", deadline: clock.t + 1000 }, clock.t), ["up"])).duplicate, false);
  clock.t += 2000;
  const swept = await store.sweep();
  assert.equal(swept.dedup, 1600 - 1024 + 2 + 1);
});

test("priority out of range is a clear error", async (t) => {
  const store = await openStore(t);
  await assert.rejects(store.enqueue(msg("d1", 0, { priority: 12 }), ["up"]), { code: "STRATA_STORE_PRIORITY" });
});
