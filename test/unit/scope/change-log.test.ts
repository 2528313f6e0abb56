import assert from "node:assert/strict";
import { test } from "node:test";
import { ScopeChangeLog } from "../../../core/scope/index.js";
import { device, edge, registry, tree } from "./setup.js";

test("first answer is a full snapshot; later answers carry only the subtree's changes", async () => {
  const reg = await registry("root", tree());
  const log = new ScopeChangeLog(reg);
  const first = log.answer("gwA", 0, undefined)!;
  assert.equal(first.full, true);
  assert.equal(first.records.length, 5);
  assert.equal(log.answer("gwA", first.cursor, first.epoch), undefined, "nothing changed: no answer");

  await reg.put(device("leafB2", "gwB")); // another subtree
  assert.equal(log.answer("gwA", first.cursor, first.epoch), undefined, "a change elsewhere is not gwA's business");
  await reg.put({ ...reg.get("leafA1")!, status: "disabled" });
  const delta = log.answer("gwA", first.cursor, first.epoch)!;
  assert.equal(delta.full, false);
  assert.deepEqual(delta.records.map((r) => [r.id, r.status]), [["leafA1", "disabled"]]);
  assert.ok(delta.cursor > first.cursor);
  log.close();
});

test("removals reach the child as tombstones, also for the descendants of a removed gateway", async () => {
  const reg = await registry("root", tree());
  const log = new ScopeChangeLog(reg);
  const base = log.answer("gwA", 0, undefined)!;
  await reg.remove("leafA"); // also removes leafA/m
  let a = log.answer("gwA", base.cursor, base.epoch)!;
  assert.deepEqual(a.removed.sort(), ["leafA", "leafA/m"]);
  await reg.remove("gwA1");
  a = log.answer("gwA", a.cursor, a.epoch)!;
  assert.deepEqual(a.removed.sort(), ["gwA1", "leafA1"], "leafA1 hangs from nothing now: it left gwA's subtree");
  assert.equal(log.answer("gwB", log.answer("gwB", 0, undefined)!.cursor, log.epoch), undefined, "gwB is told nothing of gwA's removals");
  log.close();
});

test("moving a gateway to another parent moves its whole subtree: removed below the old parent, added below the new", async () => {
  const reg = await registry("root", tree());
  const log = new ScopeChangeLog(reg);
  const a0 = log.answer("gwA", 0, undefined)!;
  const b0 = log.answer("gwB", 0, undefined)!;
  await reg.put({ ...reg.get("gwA1")!, parent: "gwB" });
  const a = log.answer("gwA", a0.cursor, a0.epoch)!;
  assert.deepEqual(a.removed.sort(), ["gwA1", "leafA1"]);
  assert.deepEqual(a.records, []);
  const b = log.answer("gwB", b0.cursor, b0.epoch)!;
  assert.deepEqual(b.records.map((r) => r.id).sort(), ["gwA1", "leafA1"]);
  assert.deepEqual(b.removed, []);
  log.close();
});

test("a cursor of another epoch, or older than the bounded departure log, gets a full snapshot", async () => {
  const reg = await registry("root", tree());
  const log = new ScopeChangeLog(reg, { maxDepartures: 2 });
  const base = log.answer("gwA", 0, undefined)!;
  assert.equal(log.answer("gwA", base.cursor, "another-epoch")!.full, true, "the parent restarted: resync in full");
  for (const id of ["x1", "x2", "x3"]) await reg.put(device(id, "gwA"));
  for (const id of ["x1", "x2", "x3"]) await reg.remove(id);
  const late = log.answer("gwA", base.cursor, base.epoch)!;
  assert.equal(late.full, true, "x1's removal fell out of the log: only a snapshot is exact");
  assert.deepEqual(late.records.map((r) => r.id).sort(), ["gwA", "gwA1", "leafA", "leafA/m", "leafA1"]);
  log.close();
});

test("nextChange wakes on a change, on abort, or at the timeout", async () => {
  const reg = await registry("root", [edge("gwA")]);
  const log = new ScopeChangeLog(reg);
  const woke = log.nextChange(10_000);
  await reg.put(device("d", "gwA"));
  await woke;
  const ac = new AbortController();
  const aborted = log.nextChange(10_000, ac.signal);
  ac.abort();
  await aborted;
  await log.nextChange(5);
  const pending = log.nextChange(10_000);
  log.close();
  await pending; // close releases waiters
});
