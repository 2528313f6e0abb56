import { test } from "node:test";
import assert from "node:assert/strict";
import { msg, openStore } from "./helpers.js";

test("priority lanes: weighted round-robin 10-p, no lane starves", async (t) => {
  const store = await openStore(t);
  // 120 messages in each of the ten lanes, all ready at once.
  const writes = [];
  for (let p = 0; p < 10; p++) for (let i = 0; i < 120; i++) writes.push(store.enqueue(msg(`s${p}`, i, { priority: p }), ["up"]));
  await Promise.all(writes);
  const q = store.queue("up");
  // 1 lease at a time, as a slow link would: 110 turns = two rounds of weights 10+9+…+1 = 55.
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 110; i++) {
    const [l] = await q.lease(1);
    counts[l.message.priority]++;
  }
  assert.deepEqual(counts, [20, 18, 16, 14, 12, 10, 8, 6, 4, 2]);
});

test("priority 9 is served even under a flood of priority 0", async (t) => {
  const store = await openStore(t);
  const writes = [];
  for (let i = 0; i < 500; i++) writes.push(store.enqueue(msg("flood", i, { priority: 0 }), ["up"]));
  for (let i = 0; i < 50; i++) writes.push(store.enqueue(msg("low", i, { priority: 9 }), ["up"]));
  await Promise.all(writes);
  const got = await store.queue("up").lease(110);
  const low = got.filter((l) => l.message.priority === 9).length;
  assert.equal(low, 10, `lane 9 got ${low} of 110 (weights 10:1)`);
});

test("sources within a lane are served round-robin: one flooding device cannot starve the rest", async (t) => {
  const store = await openStore(t);
  // The flood arrives first, then two quiet devices.
  for (let i = 0; i < 1000; i++) void store.enqueue(msg("flood", i), ["up"]);
  const writes = [];
  for (let i = 0; i < 10; i++) {
    writes.push(store.enqueue(msg("quiet1", i), ["up"]));
    writes.push(store.enqueue(msg("quiet2", i), ["up"]));
  }
  await Promise.all(writes);
  const got = await store.queue("up").lease(30);
  const per = (s: string): number => got.filter((l) => l.message.source === s).length;
  assert.deepEqual([per("flood"), per("quiet1"), per("quiet2")], [10, 10, 10]);
  // Each source's share is still in its own order.
  const q1 = got.filter((l) => l.message.source === "quiet1").map((l) => Number(l.message.properties.n));
  assert.deepEqual(q1, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test("groups inside a share: a grandchild's subtree is one FIFO, so two children of a child share it fairly; order per source holds, also after a restart", async (t) => {
  const dir = (await import("./helpers.js")).tempDir(t);
  const path = (await import("node:path")).join(dir, "db");
  const store = await openStore(t, { path });
  // All through one child ("mid"): childA's six leaves and childB's one leaf.
  const writes = [];
  for (let i = 0; i < 60; i++) for (let l = 0; l < 6; l++) writes.push(store.enqueue(msg(`flood-${l}`, i), ["up"], { share: "mid", group: "childA" }));
  for (let i = 0; i < 60; i++) writes.push(store.enqueue(msg("quiet", i), ["up"], { share: "mid", group: "childB" }));
  await Promise.all(writes);
  const check = async (q: ReturnType<typeof store.queue>) => {
    const got = await q.lease(100);
    const quiet = got.filter((l) => l.message.source === "quiet");
    assert.equal(quiet.length, 50, `childB's one leaf gets half of the share, not a seventh (got ${quiet.length} of 100)`);
    for (const source of ["quiet", "flood-0", "flood-5"]) {
      const ns = got.filter((l) => l.message.source === source).map((l) => Number(l.message.properties.n));
      assert.deepEqual(ns, [...ns].sort((a, b) => a - b), `${source} in order`);
    }
    q.release(got);
  };
  await check(store.queue("up"));
  await store.close();
  const again = await openStore(t, { path });
  await check(again.queue("up"));
});
