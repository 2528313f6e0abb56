import { test } from "node:test";
import assert from "node:assert/strict";
import { isStrataError } from "../../../core/errors.js";
import { join } from "node:path";
import { LevelStore } from "../../../core/store/index.js";
import { silentLogger } from "../../../core/log.js";
import { msg, nOf, openStore, tempDir } from "./helpers.js";

test("shares first, then sources: a child with ten leaves gets one share, as a single device does", async (t) => {
  const store = await openStore(t);
  const writes = [];
  // childA forwards for ten leaves, 100 each, all queued before childB's and the local device's messages.
  for (let i = 0; i < 100; i++) for (let l = 0; l < 10; l++) writes.push(store.enqueue(msg(`leafA${l}`, i), ["up"], { share: "childA" }));
  for (let i = 0; i < 100; i++) writes.push(store.enqueue(msg("leafB", i), ["up"], { share: "childB" }));
  for (let i = 0; i < 100; i++) writes.push(store.enqueue(msg("local", i), ["up"]));
  await Promise.all(writes);
  const got = await store.queue("up").lease(90);
  const a = got.filter((l) => l.message.source.startsWith("leafA"));
  const b = got.filter((l) => l.message.source === "leafB");
  const local = got.filter((l) => l.message.source === "local");
  assert.deepEqual([a.length, b.length, local.length], [30, 30, 30]);
  // Inside childA's share its leaves take turns, each in its own order.
  for (let l = 0; l < 10; l++) {
    assert.deepEqual(a.filter((x) => x.message.source === `leafA${l}`).map((x) => nOf(x.message)), [0, 1, 2]);
  }
  assert.deepEqual(b.map((x) => nOf(x.message)), Array.from({ length: 30 }, (_, i) => i));
});

test("a released message goes back before newer ones of its source, inside its share", async (t) => {
  const store = await openStore(t);
  for (let i = 0; i < 4; i++) await store.enqueue(msg("leaf", i), ["up"], { share: "child" });
  const q = store.queue("up");
  const first = await q.lease(2);
  q.release(first);
  const again = await q.lease(4);
  assert.deepEqual(again.map((l) => nOf(l.message)), [0, 1, 2, 3]);
});

test("the share survives a restart (kept in the record)", async (t) => {
  const path = join(tempDir(t), "db");
  const first = new LevelStore({ path, gatewayId: "gw1", quotaBytes: 64 * 1024 * 1024, logger: silentLogger(), sweepIntervalMs: 0 });
  await first.open();
  for (let i = 0; i < 20; i++) for (let l = 0; l < 4; l++) await first.enqueue(msg(`leafA${l}`, i), ["up"], { share: "childA" });
  for (let i = 0; i < 20; i++) await first.enqueue(msg("leafB", i), ["up"], { share: "childB" });
  await first.close();
  const store = await openStore(t, { path });
  const got = await store.queue("up").lease(20);
  assert.equal(got.filter((l) => l.message.source === "leafB").length, 10);
  assert.deepEqual(store.stats().shares && Object.keys(store.stats().shares!).sort(), ["childA", "childB"]);
});

test("share quota: a share may fill at most half the quota while another share has messages queued", async (t) => {
  const body = Buffer.alloc(1000);
  const store = await openStore(t, { quotaBytes: 100_000 });
  const flood = async (share: string, source: string, from: number): Promise<number> => {
    for (let i = from; ; i++) {
      try {
        await store.enqueue(msg(source, i, { body }), ["up"], { share });
      } catch (err) {
        assert.ok(isStrataError(err, "STRATA_STORE_QUOTA"), String(err));
        return i - from;
      }
    }
  };
  // Alone, childA may use the whole quota…
  const alone = await flood("childA", "leafA", 0);
  assert.ok(alone > 75, `alone childA stored ${alone} messages of ~1.2 kB in a 100 kB quota`);
  // …once a little of its backlog drained, childB gets in…
  const q = store.queue("up");
  await q.ack(await q.lease(10));
  await store.enqueue(msg("leafB", 0, { body }), ["up"], { share: "childB" });
  // …and now that childB has traffic, childA, far over half, is refused although the disk has room.
  const used = store.stats().usedBytes;
  assert.ok(used + 5000 < 100_000);
  await assert.rejects(store.enqueue(msg("leafA", 1000, { body }), ["up"], { share: "childA" }),
    (err: Error) => isStrataError(err, "STRATA_STORE_QUOTA") && /share of childA/.test(err.message));
  assert.equal(store.stats().usedBytes, used);
  // The room left is childB's until the total quota is reached.
  const more = await flood("childB", "leafB", 1);
  assert.ok(more >= 3, `childB got ${more} more`);
  assert.ok(store.stats().usedBytes > 98_000);
});

test("share quota: the share over its half is refused while the disk has room, the other is not", async (t) => {
  const body = Buffer.alloc(1000);
  const store = await openStore(t, { quotaBytes: 100_000 });
  for (let i = 0; i < 30; i++) await store.enqueue(msg("leafA", i, { body }), ["up"], { share: "childA" });
  for (let i = 0; i < 10; i++) await store.enqueue(msg("leafB", i, { body }), ["up"], { share: "childB" });
  await assert.rejects(
    (async () => { for (let i = 30; i < 60; i++) await store.enqueue(msg("leafA", i, { body }), ["up"], { share: "childA" }); })(),
    (err: Error) => /share of childA/.test(err.message));
  assert.ok(store.stats().shares!.childA! <= 50_000);
  assert.ok(store.stats().usedBytes < 70_000, "refused by the share, not the disk");
  // childB, under its half, still gets in.
  await store.enqueue(msg("leafB", 10, { body }), ["up"], { share: "childB" });
});
