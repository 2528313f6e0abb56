import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../../../core/log.js";
import { LevelStore } from "../../../core/store/index.js";
import { tempDir } from "./helpers.js";

interface Twin { version: number; desired: Record<string, unknown> }

test("kv: put/get/del/entries round trip, namespaces isolated, durable across reopen", async (t) => {
  const path = join(tempDir(t), "db");
  const opts = { path, gatewayId: "gw1", quotaBytes: 1 << 20, logger: silentLogger(), sweepIntervalMs: 0 };
  const s1 = new LevelStore(opts);
  await s1.open();
  const twins = s1.kv<Twin>("twins");
  const sessions = s1.kv<{ subs: string[] }>("mqtt-sessions");
  await Promise.all([
    twins.put("d1", { version: 1, desired: { a: 1 } }),
    twins.put("d1/m1", { version: 3, desired: {} }),
    twins.put("d2", { version: 2, desired: { ü: "ñ" } }),
    twins.put("e1", { version: 1, desired: {} }),
    sessions.put("d1", { subs: ["devices/d1/messages/devicebound/#"] }),
  ]);
  assert.deepEqual(await twins.get("d1"), { version: 1, desired: { a: 1 } });
  assert.equal(await twins.get("nope"), undefined);
  await twins.put("d1", { version: 2, desired: { a: 2 } });
  await twins.del("e1");
  await s1.close();

  const s2 = new LevelStore(opts);
  await s2.open();
  t.after(() => s2.close());
  const t2 = s2.kv<Twin>("twins");
  assert.deepEqual(await t2.get("d1"), { version: 2, desired: { a: 2 } });
  assert.equal(await t2.get("e1"), undefined);
  const all: string[] = [];
  for await (const [k] of t2.entries()) all.push(k);
  assert.deepEqual(all, ["d1", "d1/m1", "d2"]);
  const d1: [string, Twin][] = [];
  for await (const e of t2.entries("d1")) d1.push(e);
  assert.deepEqual(d1.map(([k, v]) => [k, v.version]), [["d1", 2], ["d1/m1", 3]]);
  assert.deepEqual(await s2.kv("mqtt-sessions").get("d1"), { subs: ["devices/d1/messages/devicebound/#"] });
  // A namespace that is a prefix of another does not see the other's keys.
  const tw: string[] = [];
  for await (const [k] of s2.kv("twin").entries()) tw.push(k);
  assert.deepEqual(tw, []);
});

test("kv put of a non-JSON value is refused clearly", async (t) => {
  const store = new LevelStore({ path: join(tempDir(t), "db"), gatewayId: "gw1", quotaBytes: 1 << 20, logger: silentLogger(), sweepIntervalMs: 0 });
  await store.open();
  t.after(() => store.close());
  await assert.rejects(store.kv("x").put("k", undefined), { code: "STRATA_STORE_KV_VALUE" });
});
