import assert from "node:assert/strict";
import { test } from "node:test";
import { IDENTITIES_PATH, SCOPE_PATH } from "../../../core/scope/index.js";
import { startTestGateway } from "../../support/gateway.js";
import { clientAs, sasKey, waitForIdentities } from "./helpers.js";

test("registration is forwarded hop by hop to the root, scoped at every hop, and refused with 502 while the root is away", async (t) => {
  const root = await startTestGateway({ deviceId: "root" });
  t.after(() => root.stop({ remove: true }));
  const { key: midKey } = await root.addDevice("mid", { edge: true });
  const { key: lowKey } = await root.addDevice("low", { edge: true, parent: "mid" });
  await root.addDevice("other", { edge: true });
  const mid = await startTestGateway({ deviceId: "mid", parent: { gateway: root, key: midKey } });
  t.after(() => mid.stop({ remove: true }));
  const low = await startTestGateway({ deviceId: "low", parent: { gateway: mid, key: lowKey } });
  t.after(() => low.stop({ remove: true }));
  await waitForIdentities(low.gw.identities, () => !!low.gw.identities.get("low"), 10_000, "low's own record at low");

  // low's own CLI registers a leaf under low: low → mid → root, keys generated at the root.
  const lowSelf = clientAs(low, "low", lowKey);
  t.after(() => lowSelf.close());
  const res = await lowSelf.request("POST", IDENTITIES_PATH, { deviceId: "leafX", parent: "low" });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const stored = res.body as { id: string; parent: string; auth: { type: string; primaryKey: string } };
  assert.equal(stored.parent, "low");
  assert.equal(stored.auth.type, "sas");
  assert.equal(sasKey(root.gw.identities, "leafX"), stored.auth.primaryKey, "created at the root");
  await waitForIdentities(low.gw.identities, () => !!low.gw.identities.get("leafX"), 5000, "leafX down at low");

  // Idempotent: the same registration again answers the same record (same keys).
  const again = await lowSelf.request("POST", IDENTITIES_PATH, { deviceId: "leafX", parent: "low" });
  assert.equal(again.status, 200);
  assert.equal((again.body as typeof stored).auth.primaryKey, stored.auth.primaryKey);

  // Refusals. Out of scope: mid (a child of the root) asks for a device under a gateway outside its subtree.
  const midAsChild = clientAs(root, "mid", midKey);
  t.after(() => midAsChild.close());
  const outOfScope = await midAsChild.request("POST", IDENTITIES_PATH, { deviceId: "sneaky", parent: "other" });
  assert.equal(outOfScope.status, 403, JSON.stringify(outOfScope.body));
  assert.equal(root.gw.identities.get("sneaky"), undefined);
  // Through the hops too: low's CLI asks for a device under "other"; the root refuses for mid's scope.
  const viaHops = await lowSelf.request("POST", IDENTITIES_PATH, { deviceId: "sneaky2", parent: "other" });
  assert.equal(viaHops.status, 403, JSON.stringify(viaHops.body));
  // Conflict: an id that exists under another parent.
  const taken = await lowSelf.request("POST", IDENTITIES_PATH, { deviceId: "other", parent: "low", edge: true });
  assert.equal(taken.status, 409, JSON.stringify(taken.body));
  // Not a child: a leaf's token may neither sync a scope nor register.
  const leafClient = clientAs(root, "leafX", stored.auth.primaryKey);
  t.after(() => leafClient.close());
  assert.equal((await leafClient.request("GET", `${SCOPE_PATH}?since=0`)).status, 403);
  assert.equal((await leafClient.request("POST", IDENTITIES_PATH, { deviceId: "y", parent: "low" })).status, 403);
  // A grandchild is not a direct child of the root either.
  const lowAtRoot = clientAs(root, "low", lowKey);
  t.after(() => lowAtRoot.close());
  assert.equal((await lowAtRoot.request("GET", `${SCOPE_PATH}?since=0`)).status, 403);

  // The root stops: registration fails at mid with a clear 502, relayed to low's CLI.
  await root.stop();
  const down = await lowSelf.request("POST", IDENTITIES_PATH, { deviceId: "leafY", parent: "low" });
  assert.equal(down.status, 502);
  assert.match((down.body as { message: string }).message, /the root is unreachable: .*child add needs the root/);
});
