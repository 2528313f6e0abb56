import assert from "node:assert/strict";
import { test } from "node:test";
import { generateKey } from "../../../core/identity/index.js";
import { startTestGateway } from "../../support/gateway.js";
import { deviceToken, waitForIdentities } from "./helpers.js";

test("a child learns its subtree, gets changes at the root within seconds, and authenticates from its cache while the root is away", async (t) => {
  let root = await startTestGateway({ deviceId: "root" });
  t.after(() => root.stop({ remove: true }));
  const { key: childKey } = await root.addDevice("gw-child", { edge: true });
  const leaf = await root.addDevice("leaf1", { parent: "gw-child" });
  await root.addDevice("elsewhere"); // under the root, not in the child's scope

  const child = await startTestGateway({ deviceId: "gw-child", parent: { gateway: root, key: childKey } });
  t.after(() => child.stop({ remove: true }));
  const ids = child.gw.identities;
  await waitForIdentities(ids, () => !!ids.get("leaf1") && !!ids.get("gw-child"), 10_000, "the first sync");
  assert.equal(ids.get("elsewhere"), undefined, "only the child's subtree is handed down");
  assert.equal(ids.get("leaf1")!.generation, root.gw.identities.get("leaf1")!.generation, "the parent's generation is kept");
  assert.deepEqual(ids.authChain("leaf1"), ["leaf1", "gw-child"]);
  assert.equal(ids.verifySas("leaf1", deviceToken(child.hubName, "leaf1", leaf.key)).ok, true);

  // A new device and a disable at the root reach the child while connected (long poll, not a timer).
  const added = root.addDevice("leaf2", { parent: "gw-child" });
  const took = await waitForIdentities(ids, () => !!ids.get("leaf2"), 5000, "leaf2 at the child");
  await added;
  assert.ok(took < 3000, `a new device took ${took} ms to reach the child`);
  await root.gw.identities.put({ ...root.gw.identities.get("leaf1")!, status: "disabled" });
  await waitForIdentities(ids, () => ids.get("leaf1")?.status === "disabled", 5000, "leaf1 disabled at the child");
  const refused = ids.verifySas("leaf1", deviceToken(child.hubName, "leaf1", leaf.key));
  assert.equal(!refused.ok && refused.reason, "disabled");
  await root.gw.identities.put({ ...root.gw.identities.get("leaf1")!, status: "enabled" });
  await waitForIdentities(ids, () => ids.get("leaf1")?.status === "enabled", 5000, "leaf1 enabled again");

  // The root goes away: the child keeps authenticating its devices from the cache and says it is offline.
  const sync = child.gw.scopeService!.sync!;
  const offline = new Promise<void>((resolve) => { const off = sync.on((s) => { if (s.state === "offline") { off(); resolve(); } }); });
  await root.stop();
  await offline;
  assert.equal(ids.verifySas("leaf1", deviceToken(child.hubName, "leaf1", leaf.key)).ok, true, "cached auth while the root is down");
  assert.equal(ids.verifySas("leaf1", deviceToken(child.hubName, "leaf1", generateKey())).ok, false, "a wrong key is still refused");

  // The root comes back (a new epoch): the child resyncs in full, and a revocation made now reaches it.
  root = await root.restart();
  const reconnected = new Promise<void>((resolve) => { const off = sync.on((s) => { if (s.state === "connected") { off(); resolve(); } }); });
  await reconnected;
  await root.gw.identities.remove("leaf2");
  await waitForIdentities(ids, () => ids.get("leaf2") === undefined, 8000, "leaf2 removed at the child");
  assert.ok(ids.get("leaf1"), "what is still in scope stays");
});

test("the child's cursor survives its restart: it does not need a full snapshot to stay exact", async (t) => {
  const root = await startTestGateway({ deviceId: "root" });
  t.after(() => root.stop({ remove: true }));
  const { key } = await root.addDevice("gw-c", { edge: true });
  await root.addDevice("d1", { parent: "gw-c" });
  let child = await startTestGateway({ deviceId: "gw-c", parent: { gateway: root, key } });
  t.after(() => child.stop({ remove: true }));
  await waitForIdentities(child.gw.identities, () => !!child.gw.identities.get("d1"), 10_000, "d1");
  const before = child.gw.scopeService!.sync!.state().since;
  await child.stop();
  await root.gw.identities.remove("d1"); // removed while the child was down: a tombstone
  child = await child.restart();
  assert.ok(child.gw.identities.get("d1"), "the cache survives the child's restart");
  await waitForIdentities(child.gw.identities, () => child.gw.identities.get("d1") === undefined, 8000, "d1 removed after the restart");
  assert.ok(child.gw.scopeService!.sync!.state().since > before);
});
