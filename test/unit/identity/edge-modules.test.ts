import { test } from "node:test";
import assert from "node:assert/strict";
import { EDGE_SYSTEM_MODULES, ensureEdgeModules } from "../../../core/identity/index.js";
import { makeRegistry, sasDevice } from "./setup.js";

test("ensureEdgeModules: an edge device gets $edgeAgent and $edgeHub (SAS, parent = the device); existing ones keep their keys", async () => {
  const { registry } = await makeRegistry([sasDevice("gw1", { edge: true }), sasDevice("leaf")]);
  const created = await ensureEdgeModules(registry, registry.get("gw1")!);
  assert.deepEqual(created.map((r) => r.id), ["gw1/$edgeAgent", "gw1/$edgeHub"]);
  for (const m of EDGE_SYSTEM_MODULES) {
    const r = registry.get(`gw1/${m}`)!;
    assert.equal(r.moduleId, m);
    assert.equal(r.deviceId, "gw1");
    assert.equal(r.parent, "gw1");
    assert.equal(r.edge, false);
    assert.equal(r.auth.type, "sas");
  }
  const keyBefore = (registry.get("gw1/$edgeAgent")!.auth as { primaryKey: string }).primaryKey;
  assert.deepEqual(await ensureEdgeModules(registry, registry.get("gw1")!), [], "a second call creates nothing");
  assert.equal((registry.get("gw1/$edgeAgent")!.auth as { primaryKey: string }).primaryKey, keyBefore);

  assert.deepEqual(await ensureEdgeModules(registry, registry.get("leaf")!), [], "a plain device gets none");
  assert.equal(registry.get("leaf/$edgeAgent"), undefined);
  assert.deepEqual(await ensureEdgeModules(registry, registry.get("gw1/$edgeHub")!), [], "a module gets none");
});
