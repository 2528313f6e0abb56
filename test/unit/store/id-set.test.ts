import { test } from "node:test";
import assert from "node:assert/strict";
import { IdSet } from "../../../core/store/id-set.js";

test("id set: Strata ids are remembered by origin and seq, other shapes exactly, and never confused", () => {
  const s = new IdSet(1_000_000);
  const far = Date.now() + 60_000;
  for (const id of ["gw1:0", "gw1:1023", "gw1:1024", "gw2:5", "a:b:7", "gw1:007", "gw1:-1", "gw1:1.5", "plain", "gw1:", "gw1:1234567890123456"]) {
    s.add(id, far);
  }
  for (const id of ["gw1:0", "gw1:1023", "gw1:1024", "gw2:5", "a:b:7", "gw1:007", "gw1:-1", "gw1:1.5", "plain", "gw1:", "gw1:1234567890123456"]) {
    assert.equal(s.has(id), true, id);
  }
  // Same seq, other origin or spelling: a different id.
  for (const id of ["gw1:7", "gw2:0", "a:7", "b:7", "gw1:5", "gw1:1025", "gw1:1022", "gw10:0", "gw:10", "plain:"]) {
    assert.equal(s.has(id), false, id);
  }
  assert.equal(s.size, 11);
  s.add("gw1:0", far); // again: counted once
  assert.equal(s.size, 11);
});

test("id set: bounded to max ids, forgetting the oldest chunk of 1024 seqs first", () => {
  const s = new IdSet(1500);
  const far = Date.now() + 60_000;
  for (let i = 0; i < 1024; i++) s.add(`gw1:${i}`, far);
  for (let i = 1024; i < 1600; i++) s.add(`gw1:${i}`, far);
  // 1600 > 1500: the first chunk (0..1023) went whole, the second stays.
  assert.equal(s.has("gw1:5"), false);
  assert.equal(s.has("gw1:1024"), true);
  assert.equal(s.has("gw1:1599"), true);
  assert.equal(s.size, 576);
});

test("id set: sparse ids are bounded by chunks too (max / 32), so memory stays small", () => {
  const s = new IdSet(3200); // at most 100 chunks
  const far = Date.now() + 60_000;
  for (let i = 0; i < 300; i++) s.add(`gw1:${i * 1024}`, far);
  assert.equal(s.size, 100);
  assert.equal(s.has(`gw1:${299 * 1024}`), true);
  assert.equal(s.has(`gw1:${199 * 1024}`), false);
  assert.equal(s.has(`gw1:${200 * 1024}`), true);
});

test("id set: sweep forgets a chunk once its latest deadline passed, and exact ids by their own", () => {
  const s = new IdSet(1_000_000);
  const now = 1_000_000;
  s.add("gw1:1", now + 10);
  s.add("gw1:2", now + 1000); // same chunk: kept until the later deadline
  s.add("gw2:1", now + 10);
  s.add("odd-1", now + 10);
  s.add("odd-2", now + 1000);
  assert.equal(s.sweep(now + 100), 2);
  assert.equal(s.has("gw1:1"), true);
  assert.equal(s.has("gw2:1"), false);
  assert.equal(s.has("odd-1"), false);
  assert.equal(s.has("odd-2"), true);
  assert.equal(s.sweep(now + 2000), 3);
  assert.equal(s.size, 0);
  s.add("gw1:1", now + 5000); // a swept origin comes back cleanly
  assert.equal(s.has("gw1:1"), true);
});
