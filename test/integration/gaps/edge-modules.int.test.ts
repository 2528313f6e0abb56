// Creating a child gateway at the root also creates its `$edgeAgent` and `$edgeHub` module identities, as IoT Hub
// does for edge devices: through the service API (PUT /devices/{id}, iotEdge) and through POST /$strata/identities.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GatewayClient, IDENTITIES_PATH, ownerTokenSigner } from "../../../core/scope/index.js";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";
import { waitForIdentities } from "../scope/helpers.js";

function ownerClient(gw: TestGateway): GatewayClient {
  return new GatewayClient({
    host: gw.address, port: gw.port("https"), hostname: gw.gw.config.hostname, ca: gw.caPem,
    token: ownerTokenSigner(gw.hubName, gw.ownerKey),
  });
}

const API = "api-version=2021-04-12";

test("edge devices created at the root get {id}/$edgeAgent and {id}/$edgeHub; plain devices do not; a child gateway syncs its own", async (t) => {
  const root = await startTestGateway({ deviceId: "root", plugins: ["root"] });
  t.after(() => root.stop({ remove: true }));
  const owner = ownerClient(root);
  t.after(() => owner.close());
  const ids = root.gw.identities;

  // Service API, as azure-iothub's Registry.create sends it.
  const put = await owner.request("PUT", `/devices/edge-a?${API}`, { deviceId: "edge-a", capabilities: { iotEdge: true } });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const modules = await owner.request("GET", `/devices/edge-a/modules?${API}`);
  assert.equal(modules.status, 200, JSON.stringify(modules.body));
  assert.deepEqual((modules.body as { moduleId: string }[]).map((m) => m.moduleId).sort(), ["$edgeAgent", "$edgeHub"]);
  assert.equal((modules.body as { managedBy?: string }[])[0]!.managedBy, "IotEdge");
  assert.equal((await owner.request("PUT", `/devices/plain?${API}`, { deviceId: "plain" })).status, 200);
  assert.equal(ids.list().filter((r) => r.deviceId === "plain").length, 1, "a device without iotEdge gets no modules");

  // POST /$strata/identities (what `strata child add` sends): the child and its two modules.
  const reg = await owner.request("POST", IDENTITIES_PATH, { deviceId: "gw1", edge: true });
  assert.equal(reg.status, 200, JSON.stringify(reg.body));
  const agent = ids.get("gw1/$edgeAgent");
  const hub = ids.get("gw1/$edgeHub");
  assert.equal(agent?.moduleId, "$edgeAgent");
  assert.equal(hub?.parent, "gw1");
  // A leaf registered below gw1 is no edge device: no modules.
  assert.equal((await owner.request("POST", IDENTITIES_PATH, { deviceId: "leaf1", parent: "gw1" })).status, 200);
  assert.equal(ids.get("leaf1/$edgeAgent"), undefined);

  // The child gateway receives its runtime's identities by scope sync, with the root's keys.
  const key = (ids.get("gw1")!.auth as { primaryKey: string }).primaryKey;
  const child = await startTestGateway({ deviceId: "gw1", parent: { gateway: root, key } });
  t.after(() => child.stop({ remove: true }));
  await waitForIdentities(child.gw.identities, () => !!child.gw.identities.get("gw1/$edgeAgent") && !!child.gw.identities.get("gw1/$edgeHub"), 10_000, "gw1's modules at gw1");
  assert.deepEqual(child.gw.identities.get("gw1/$edgeAgent")!.auth, agent!.auth);
});
