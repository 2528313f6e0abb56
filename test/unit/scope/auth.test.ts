import assert from "node:assert/strict";
import { test } from "node:test";
import { generateKey, signSas } from "../../../core/identity/index.js";
import { authenticate, type AuthContext } from "../../../core/scope/index.js";
import { device, edge, HUB, registry, tokenFor } from "./setup.js";

async function context(self: string, isRoot: boolean, selfKey?: string) {
  const ownerKey = generateKey();
  const reg = await registry(self, [
    ...(isRoot ? [] : [edge(self, "up")]),
    edge("child", self), device("leaf", self), edge("grandchild", "child"), edge("module-host", self),
  ], { ownerKey });
  const ctx: AuthContext = { identities: reg, hubName: HUB, hostnames: ["localhost"], isRoot, ...(selfKey ? { selfKey } : {}) };
  return { reg, ctx, ownerKey };
}

test("a direct child edge gateway is a child; a leaf or a grandchild is refused with 403", async () => {
  const { reg, ctx } = await context("root", true);
  const ok = authenticate(tokenFor(reg, "child"), ctx);
  assert.deepEqual(ok, { ok: true, requester: { kind: "child", id: "child" } });
  for (const id of ["leaf", "grandchild"]) {
    const r = authenticate(tokenFor(reg, id), ctx);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.status, 403, id);
    assert.match(!r.ok ? r.message : "", /not a child gateway of root/);
  }
});

test("bad, expired and missing tokens are 401", async () => {
  const { reg, ctx } = await context("root", true);
  assert.equal((authenticate(undefined, ctx) as { status: number }).status, 401);
  assert.equal((authenticate("Bearer x", ctx) as { status: number }).status, 401);
  const expired = tokenFor(reg, "child", Math.floor(Date.now() / 1000) - 3600);
  const r = authenticate(expired, ctx);
  assert.equal(!r.ok && r.status, 401);
  assert.match(!r.ok ? r.message : "", /expired/);
  const forged = signSas({ resource: `${HUB}/devices/child`, key: generateKey(), expirySecs: Math.floor(Date.now() / 1000) + 60 });
  assert.equal((authenticate(forged, ctx) as { status: number }).status, 401);
});

test("this gateway's own token is checked against its key file, even with no record of itself", async () => {
  const selfKey = generateKey();
  const { ctx } = await context("root", true, selfKey);
  const mine = signSas({ resource: `${HUB}/devices/root`, key: selfKey, expirySecs: Math.floor(Date.now() / 1000) + 60 });
  assert.deepEqual(authenticate(mine, ctx), { ok: true, requester: { kind: "self", id: "root" } });
  const wrong = signSas({ resource: `${HUB}/devices/root`, key: generateKey(), expirySecs: Math.floor(Date.now() / 1000) + 60 });
  assert.equal(authenticate(wrong, ctx).ok, false);
});

test("an iothubowner token is the owner on the root and refused below it", async () => {
  const root = await context("root", true);
  const owner = signSas({ resource: HUB, key: root.ownerKey, keyName: "iothubowner", expirySecs: Math.floor(Date.now() / 1000) + 60 });
  const r = authenticate(owner, root.ctx);
  assert.equal(r.ok && r.requester.kind, "owner");
  const mid = await context("mid", false, generateKey());
  const refused = authenticate(owner, mid.ctx);
  assert.equal(!refused.ok && refused.status, 403);
});

test("on the root an edge identity without a parent is a direct child; below the root it is not", async () => {
  const rootReg = await registry("root", [edge("top")]);
  const ctx: AuthContext = { identities: rootReg, hubName: HUB, hostnames: [], isRoot: true };
  assert.equal(authenticate(tokenFor(rootReg, "top"), ctx).ok, true);
  const midReg = await registry("mid", [edge("mid", "root"), edge("top")]);
  const r = authenticate(tokenFor(midReg, "top"), { ...ctx, identities: midReg, isRoot: false });
  assert.equal(!r.ok && r.status, 403);
});
