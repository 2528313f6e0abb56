// The registry itself: load, write-through put/remove, events (revocation), validation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKey, IdentityRegistry, type IdentityEvent, type IdentityRecord } from "../../../core/identity/index.js";
import { isStrataError } from "../../../core/errors.js";
import { silentLogger } from "../../../core/log.js";
import { MemoryKv } from "./memory-kv.js";
import { deviceToken, HUB, keysOf, makeRegistry, NOW, sasDevice } from "./setup.js";

function newRegistry(kv = new MemoryKv<IdentityRecord>()): IdentityRegistry {
  return new IdentityRegistry({ self: "gw1", hubName: HUB, hostnames: [], kv, logger: silentLogger() });
}

test("load: reads every stored record; bad records are skipped, not fatal", async () => {
  const kv = new MemoryKv<IdentityRecord>();
  const d1 = { ...sasDevice("d1"), generation: 3, updatedAt: 1 };
  await kv.put("d1", d1);
  await kv.put("bad", { ...sasDevice("bad"), auth: { type: "sas", primaryKey: "!!", secondaryKey: "" }, generation: 1, updatedAt: 1 });
  await kv.put("elsewhere", { ...sasDevice("d2"), generation: 1, updatedAt: 1 }); // key and id disagree
  const registry = newRegistry(kv);
  await registry.load();
  assert.deepEqual(registry.list().map((r) => r.id), ["d1"]);
  assert.equal(registry.get("d1")?.generation, 3);
  assert.equal(registry.verifySas("d1", deviceToken("d1", keysOf(d1).primaryKey), NOW).ok, true);
});

test("put: before load() is an error that says to load first", async () => {
  const registry = newRegistry();
  await assert.rejects(registry.put(sasDevice("d1")), (e) => isStrataError(e, "STRATA_IDENTITY_NOT_LOADED"));
});

test("put: written to the Kv before it resolves; generation bumps; emits changed with the previous record", async () => {
  const { registry, kv } = await makeRegistry([]);
  const events: IdentityEvent[] = [];
  registry.on((e) => events.push(e));
  const first = await registry.put(sasDevice("d1"));
  assert.equal(first.generation, 1);
  assert.deepEqual(kv.data.get("d1"), first);
  const second = await registry.put({ ...first, status: "disabled" });
  assert.equal(second.generation, 2);
  assert.equal(kv.data.get("d1")?.status, "disabled");
  assert.deepEqual(events.map((e) => e.type), ["changed", "changed"]);
  assert.equal(events[0]!.type === "changed" && events[0]!.previous, undefined);
  assert.deepEqual(events[1]!.type === "changed" && events[1]!.previous, first);
  assert.equal(events[1]!.record.status, "disabled");
});

test("put: a newer given generation (a parent's copy) is kept; an old one is bumped past the current", async () => {
  const { registry } = await makeRegistry([]);
  const r = await registry.put({ ...sasDevice("d1"), generation: 42 });
  assert.equal(r.generation, 42);
  assert.equal((await registry.put({ ...r, status: "disabled" })).generation, 43, "spread from get() and edited");
  assert.equal((await registry.put({ ...r, generation: 7 })).generation, 44);
});

test("put: when the Kv write fails nothing changes in memory and no event is emitted", async () => {
  const d1 = sasDevice("d1");
  const { registry, kv } = await makeRegistry([d1]);
  const events: IdentityEvent[] = [];
  registry.on((e) => events.push(e));
  kv.failNext = new Error("disk full");
  await assert.rejects(registry.put({ ...d1, auth: { type: "sas", primaryKey: generateKey(), secondaryKey: "" } }), /disk full/);
  assert.equal(events.length, 0);
  assert.equal(registry.verifySas("d1", deviceToken("d1", keysOf(d1).primaryKey), NOW).ok, true, "old key still good");
  // and the write queue keeps working after a failure
  await registry.put({ ...d1, status: "disabled" });
  assert.equal(registry.get("d1")?.status, "disabled");
});

test("put: concurrent puts land in call order, in the Kv and in memory", async () => {
  const { registry, kv } = await makeRegistry([]);
  const base = sasDevice("d1");
  const results = await Promise.all([1, 2, 3].map((n) => registry.put({ ...base, parent: `gw${n}` })));
  assert.deepEqual(results.map((r) => r.generation), [1, 2, 3]);
  assert.equal(registry.get("d1")?.parent, "gw3");
  assert.equal(kv.data.get("d1")?.parent, "gw3");
});

test("put: stored records are frozen copies (callers cannot change keys behind the registry's back)", async () => {
  const input = sasDevice("d1");
  const { registry } = await makeRegistry([input]);
  const stored = registry.get("d1")!;
  assert.ok(Object.isFrozen(stored) && Object.isFrozen(stored.auth));
  (input.auth as { primaryKey: string }).primaryKey = generateKey();
  assert.notEqual(keysOf(stored).primaryKey, input.auth.type === "sas" && input.auth.primaryKey);
});

test("put: invalid records are refused with STRATA_IDENTITY_INVALID naming the field", async () => {
  const { registry } = await makeRegistry([]);
  const cases: Array<[Parameters<IdentityRegistry["put"]>[0], RegExp]> = [
    [{ ...sasDevice("d1"), id: "d2" }, /id/],
    [{ ...sasDevice("d1"), deviceId: "" }, /deviceId/],
    [{ ...sasDevice("a/b"), deviceId: "a/b", id: "a/b" }, /deviceId/],
    [{ ...sasDevice("d1"), status: "paused" as never }, /status/],
    [{ ...sasDevice("d1"), auth: { type: "sas", primaryKey: "not base64!", secondaryKey: "" } }, /primaryKey/],
    [{ ...sasDevice("d1"), auth: { type: "selfSigned", primaryThumbprint: "abc" } }, /primaryThumbprint/],
    [{ ...sasDevice("d1"), auth: { type: "password" } as never }, /auth\.type/],
    [{ ...sasDevice("d1/m1"), edge: true }, /edge/],
    [{ ...sasDevice("d1/m1"), parent: "gw1" }, /parent/],
    [{ ...sasDevice("d1"), parent: "d1" }, /parent/],
  ];
  for (const [record, field] of cases) {
    await assert.rejects(registry.put(record), (e) => isStrataError(e, "STRATA_IDENTITY_INVALID") && field.test(e.message), String(field));
  }
  assert.equal(registry.list().length, 0);
});

test("remove: deletes from the Kv, emits removed; removing a device removes its modules", async () => {
  const { registry, kv } = await makeRegistry([sasDevice("d1"), sasDevice("d1/m1"), sasDevice("d1/m2"), sasDevice("d2")]);
  const events: IdentityEvent[] = [];
  const off = registry.on((e) => events.push(e));
  await registry.remove("d1");
  assert.deepEqual(registry.list().map((r) => r.id), ["d2"]);
  assert.deepEqual([...kv.data.keys()], ["d2"]);
  assert.deepEqual(events.map((e) => `${e.type}:${e.record.id}`).sort(), ["removed:d1", "removed:d1/m1", "removed:d1/m2"]);
  await registry.remove("ghost"); // removing an unknown identity is a no-op
  off();
  await registry.remove("d2");
  assert.equal(events.length, 3, "unsubscribed listener hears nothing");
});

test("events: a throwing listener does not stop the others or undo the change", async () => {
  const { registry } = await makeRegistry([]);
  const heard: string[] = [];
  registry.on(() => {
    throw new Error("listener bug");
  });
  registry.on((e) => heard.push(e.record.id));
  await registry.put(sasDevice("d1"));
  assert.deepEqual(heard, ["d1"]);
  assert.ok(registry.get("d1"));
});
