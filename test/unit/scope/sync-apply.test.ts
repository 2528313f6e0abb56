import assert from "node:assert/strict";
import { test } from "node:test";
import { applyScopeAnswer, backoff, ScopeChangeLog, sameRecord } from "../../../core/scope/index.js";
import { device, edge, registry, tree } from "./setup.js";

test("a child applying its parent's answers ends with exactly its subtree, generations kept", async () => {
  const root = await registry("root", tree());
  const log = new ScopeChangeLog(root);
  const child = await registry("gwA", [device("stale", "gwA")]);
  let a = log.answer("gwA", 0, undefined)!;
  await applyScopeAnswer(child, a);
  assert.deepEqual(child.list().map((r) => r.id).sort(), ["gwA", "gwA1", "leafA", "leafA/m", "leafA1"], "full: the stale record is dropped");
  for (const r of child.list()) assert.equal(r.generation, root.get(r.id)!.generation);
  assert.deepEqual(child.authChain("leafA1"), ["leafA1", "gwA1", "gwA"], "the child's own record places it below its parent");

  const rekeyed = { ...root.get("leafA")!, auth: { type: "sas" as const, primaryKey: root.get("leafB")!.auth.type === "sas" ? (root.get("leafB")!.auth as { primaryKey: string }).primaryKey : "", secondaryKey: "" } };
  await root.put(rekeyed);
  await root.remove("leafA1");
  a = log.answer("gwA", a.cursor, a.epoch)!;
  const counts = await applyScopeAnswer(child, a);
  assert.deepEqual(counts, { applied: 1, removed: 1 });
  assert.ok(sameRecord(child.get("leafA")!, root.get("leafA")!));
  assert.equal(child.get("leafA1"), undefined);
  log.close();
});

test("an unchanged record is not rewritten (a full resync does not bump every generation)", async () => {
  const root = await registry("root", [edge("gwA"), device("d", "gwA")]);
  const log = new ScopeChangeLog(root);
  const child = await registry("gwA", []);
  await applyScopeAnswer(child, log.answer("gwA", 0, undefined)!);
  const again = await applyScopeAnswer(child, log.answer("gwA", 0, "other")!);
  assert.deepEqual(again, { applied: 0, removed: 0 });
  log.close();
});

test("backoff grows from a quarter second and stays under its cap, with jitter", () => {
  for (let f = 1; f < 20; f++) {
    const ms = backoff(f, 4000);
    assert.ok(ms >= 125 && ms <= 4000, `${f}: ${ms}`);
  }
  assert.ok(backoff(1, 4000) <= 250);
});
