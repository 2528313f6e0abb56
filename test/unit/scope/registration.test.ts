import assert from "node:assert/strict";
import { test } from "node:test";
import { checkRegistration, recordToStore, registrationId, registrationSchema, type Requester } from "../../../core/scope/index.js";
import { registry, tree } from "./setup.js";

const child = (id: string): Requester => ({ kind: "child", id });
const self: Requester = { kind: "self", id: "root" };

async function check(body: unknown, requester: Requester, atRoot = true) {
  const reg = await registry("root", tree());
  const r = registrationSchema.parse(body);
  const id = registrationId(r);
  assert.equal(typeof id, "string");
  return checkRegistration(r, id as string, requester, "root", (i) => reg.get(i), atRoot);
}

test("a child may register under itself and anywhere in its subtree", async () => {
  assert.deepEqual(await check({ deviceId: "new1", parent: "gwA" }, child("gwA")), { ok: true });
  assert.deepEqual(await check({ deviceId: "new2", parent: "gwA1", edge: true }, child("gwA")), { ok: true });
  assert.deepEqual(await check({ deviceId: "leafA", moduleId: "m2" }, child("gwA")), { ok: true }, "a module of a device in scope");
});

test("out of scope is 403: under a sibling, under the root, or the child itself again", async () => {
  for (const [body, who] of [
    [{ deviceId: "new1", parent: "gwB" }, "gwA"],
    [{ deviceId: "new1" }, "gwA"],
    [{ deviceId: "leafB", moduleId: "m" }, "gwA"],
  ] as const) {
    const v = await check(body, child(who));
    assert.equal(!v.ok && v.status, 403, JSON.stringify(body));
  }
});

test("an id that exists under another parent is a 409; the same parent is accepted (idempotent add)", async () => {
  const v = await check({ deviceId: "leafB", parent: "gwA" }, child("gwA"));
  assert.equal(!v.ok && v.status, 409);
  assert.match(!v.ok ? v.message : "", /already exists under gwB/);
  assert.deepEqual(await check({ deviceId: "leafA", parent: "gwA" }, child("gwA")), { ok: true });
});

test("at the root a parent must be a known edge device; this gateway's own CLI may register anywhere", async () => {
  const v = await check({ deviceId: "x", parent: "leafA" }, self);
  assert.equal(!v.ok && v.status, 409);
  assert.deepEqual(await check({ deviceId: "x", parent: "gwB" }, self), { ok: true });
  assert.deepEqual(await check({ deviceId: "x" }, self), { ok: true });
});

test("keys are generated when none are given, and kept when an existing record is registered again", async () => {
  const r = registrationSchema.parse({ deviceId: "n", parent: "gwA", edge: true });
  const fresh = recordToStore(r, "n", undefined);
  assert.equal(fresh.auth.type, "sas");
  assert.equal(fresh.edge, true);
  assert.equal(fresh.parent, "gwA");
  const again = recordToStore(r, "n", { ...fresh, generation: 1, updatedAt: 0 });
  assert.deepEqual(again.auth, fresh.auth);
  assert.equal(typeof registrationId(registrationSchema.parse({ id: "a/b", deviceId: "a" })), "object", "id must match deviceId/moduleId");
  assert.throws(() => registrationSchema.parse({ deviceId: "a", bogus: 1 }), /bogus|Unrecognized/);
});
