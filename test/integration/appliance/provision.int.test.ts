import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { test } from "node:test";
import { loadConfig } from "../../../core/config/index.js";
import { isStrataError } from "../../../core/errors.js";
import { Gateway } from "../../../core/gateway.js";
import { signSas } from "../../../core/identity/index.js";
import { silentLogger } from "../../../core/log.js";
import { deriveDeviceKey, readState, runProvisioning, writeState, type EnrollmentGroup } from "../../../core/provision/index.js";
import { GatewayClient, SCOPE_PATH } from "../../../core/scope/index.js";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";
import { waitForIdentities } from "../scope/helpers.js";

/** root ← p1 ← p2: the new gateway is flashed to talk to p2, two parents below the root. */
async function tree(t: import("node:test").TestContext): Promise<{ root: TestGateway; p1: TestGateway; p2: () => TestGateway; restartP2: () => Promise<void> }> {
  const root = await startTestGateway({ deviceId: "root" });
  t.after(() => root.stop({ remove: true }));
  const { key: p1Key } = await root.addDevice("p1", { edge: true });
  const { key: p2Key } = await root.addDevice("p2", { edge: true, parent: "p1" });
  const p1 = await startTestGateway({ deviceId: "p1", parent: { gateway: root, key: p1Key } });
  t.after(() => p1.stop({ remove: true }));
  await waitForIdentities(p1.gw.identities, () => !!p1.gw.identities.get("p2"), 10_000, "p2 known at p1");
  let p2 = await startTestGateway({ deviceId: "p2", parent: { gateway: p1, key: p2Key } });
  t.after(() => p2.stop({ remove: true }));
  return { root, p1, p2: () => p2, restartP2: async () => { await p2.stop(); p2 = await p2.restart(); } };
}

function groups(root: TestGateway) {
  const g = root.gw.provisioning?.groups;
  assert.ok(g, "the root serves enrollment groups");
  return g;
}

/** A provisioning file as the factory flashes it: the derived key, the parent, the trust bundle. */
function flash(dir: string, o: { deviceId: string; group: string; key: string; parent: TestGateway }): string {
  const keyFile = join(dir, "device.key");
  writeFileSync(keyFile, o.key + "\n", { mode: 0o600 });
  const file = join(dir, "strata-provision.toml");
  writeFileSync(file, [
    `hub = "${o.parent.hubName}"`,
    `device_id = "${o.deviceId}"`,
    `hostname = "${o.deviceId}.plant.local"`,
    `address = "127.0.0.1"`,
    `data_dir = "${join(dir, "data")}"`,
    `config_dir = "${join(dir, "etc")}"`,
    `[listen]`, `mqtt = 0`, `amqp = 0`, `https = 0`,
    `[parent]`, `hostname = "${o.parent.gw.config.hostname}"`, `address = "${o.parent.address}"`, `https_port = ${o.parent.port("https")}`, `trust_bundle_file = "${o.parent.caFile}"`,
    `[attestation]`, `type = "enrollment-group"`, `group = "${o.group}"`, `key_file = "device.key"`,
  ].join("\n") + "\n");
  return file;
}

test("enrollment group: a gateway behind two parents is provisioned, resumes after a kill at each step, and then runs", async (t) => {
  const { root, p2, restartP2 } = await tree(t);
  const group = await groups(root).put("line-gw", {});
  const dir = mkdtempSync(join(tmpdir(), "strata-prov-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = flash(dir, { deviceId: "gw3", group: "line-gw", key: deriveDeviceKey(group.primaryKey, "gw3"), parent: p2() });
  const stateFile = join(dir, "data", "provision.json");
  const run = (stopAfter?: "registered") => runProvisioning({ file, stateFile, logger: silentLogger(), retryForMs: 0, ...(stopAfter ? { stopAfter } : {}) });

  // 1. Killed right after the answer was recorded: the root placed gw3 under p2 (the parent it came through).
  await assert.rejects(run("registered"), (e) => isStrataError(e, "STRATA_PROVISION_STOPPED"));
  const atRoot = root.gw.identities.get("gw3");
  assert.ok(atRoot, "gw3 created at the root");
  assert.equal(atRoot.parent, "p2");
  assert.equal(atRoot.edge, true);
  assert.deepEqual(atRoot.auth, { type: "sas", primaryKey: deriveDeviceKey(group.primaryKey, "gw3"), secondaryKey: deriveDeviceKey(group.secondaryKey, "gw3") });
  const generation = atRoot.generation;
  let state = readState(stateFile);
  assert.equal(state?.step, "registered");
  assert.equal(state?.attempts, 1);
  assert.equal(statSync(stateFile).mode & 0o777, 0o600, "the state holds keys until installed");

  // 2. The parent restarts meanwhile; the next boot installs from the recorded answer without asking again.
  await restartP2();
  let result = await run();
  assert.equal(result.state.step, "done");
  assert.equal(result.state.attempts, 1, "no second registration");
  assert.equal(result.state.answer, undefined, "keys dropped from the state once installed");
  assert.equal(root.gw.identities.get("gw3")?.generation, generation);

  // 3. Killed while the request was in flight (state "registering", no answer): it asks again, and the root
  //    answers the same record (same generation, same key).
  const { answer: _a, configFile: _c, ...rest } = result.state;
  writeState(stateFile, { ...rest, step: "registering" });
  rmSync(join(dir, "etc"), { recursive: true });
  result = await run();
  assert.equal(result.state.step, "done");
  assert.equal(result.state.attempts, 2);
  assert.equal(root.gw.identities.get("gw3")?.generation, generation, "idempotent at the root");
  // 4. Done means done: a further boot sends nothing.
  assert.equal((await run()).already, true);

  // The installed gateway: its config validates, its key is the derived one, its certificate chains to the root
  // CA for its name, and p2 accepts it as a child at once (cached on the way down).
  state = readState(stateFile)!;
  const config = loadConfig(state.configFile!);
  assert.equal(config.device_id, "gw3");
  assert.equal(config.parent?.https_port, p2().port("https"));
  assert.equal(readFileSync(config.identity!.key_file, "utf8").trim(), deriveDeviceKey(group.primaryKey, "gw3"));
  const asGw3 = new GatewayClient({
    host: "127.0.0.1", port: p2().port("https"), hostname: p2().gw.config.hostname, ca: p2().caPem,
    token: () => signSas({ resource: `${root.hubName}/devices/gw3`, key: deriveDeviceKey(group.primaryKey, "gw3"), expirySecs: Math.floor(Date.now() / 1000) + 600 }),
  });
  t.after(() => asGw3.close());
  await waitForIdentities(p2().gw.identities, () => !!p2().gw.identities.get("gw3"), 10_000, "gw3 at p2");
  const scope = await asGw3.request("GET", `${SCOPE_PATH}?since=0`);
  assert.equal(scope.status, 200, JSON.stringify(scope.body));

  const gw3 = await Gateway.start({ config, logger: silentLogger(), defaultPlugins: [] });
  t.after(() => gw3.stop());
  const https = gw3.listeners.get("https")!;
  const peer = await new Promise<tls.PeerCertificate>((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port: https.port, ca: readFileSync(config.tls.ca_file), servername: "gw3.plant.local" }, () => {
      const c = s.getPeerCertificate();
      s.end();
      resolve(c);
    });
    s.once("error", reject);
  });
  assert.match(peer.subjectaltname ?? "", /gw3\.plant\.local/);
});

test("refusals: wrong derived key, unknown group, disabled group, placement pinned elsewhere", async (t) => {
  const { root, p2 } = await tree(t);
  const g = groups(root);
  const line = await g.put("line-gw", {});
  await g.put("off", { status: "disabled" });
  await g.put("pinned", { parent: "p1" });
  const cases: { name: string; group: string; key: string; status: number; text: RegExp }[] = [
    { name: "wrong key", group: "line-gw", key: deriveDeviceKey(line.primaryKey, "someone-else"), status: 401, text: /signature does not match/ },
    { name: "unknown group", group: "nope", key: deriveDeviceKey(line.primaryKey, "gw9"), status: 404, text: /does not exist/ },
    { name: "disabled group", group: "off", key: deriveDeviceKey((await g.get("off"))!.primaryKey, "gw9"), status: 403, text: /is disabled/ },
    { name: "pinned elsewhere", group: "pinned", key: deriveDeviceKey((await g.get("pinned"))!.primaryKey, "gw9"), status: 403, text: /places its gateways under p1/ },
  ];
  for (const c of cases) {
    const dir = mkdtempSync(join(tmpdir(), "strata-prov-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = flash(dir, { deviceId: "gw9", group: c.group, key: c.key, parent: p2() });
    const stateFile = join(dir, "data", "provision.json");
    await assert.rejects(runProvisioning({ file, stateFile, logger: silentLogger(), retryForMs: 0 }), (e: unknown) => {
      assert.ok(isStrataError(e, "STRATA_PROVISION_REFUSED"), `${c.name}: ${String(e)}`);
      assert.match((e as Error).message, new RegExp(`answered ${c.status}`), c.name);
      assert.match((e as Error).message, c.text, c.name);
      return true;
    });
    const s = readState(stateFile);
    assert.equal(s?.step, "registering", `${c.name}: stays resumable`);
    assert.match(s?.lastError ?? "", c.text, `${c.name}: the reason is kept for strata check`);
  }
  assert.equal(root.gw.identities.get("gw9"), undefined, "nothing was created");
});

test("the root's enrollment routes: owner token manages groups, keys are never listed, a device token is refused", async (t) => {
  const root = await startTestGateway({ deviceId: "root" });
  t.after(() => root.stop({ remove: true }));
  const owner = new GatewayClient({
    host: root.address, port: root.port("https"), hostname: root.gw.config.hostname, ca: root.caPem,
    token: () => signSas({ resource: root.hubName, key: root.ownerKey, keyName: "iothubowner", expirySecs: Math.floor(Date.now() / 1000) + 600 }),
  });
  t.after(() => owner.close());
  const put = await owner.request("PUT", "/$strata/enrollments/line-gw", { edge: true });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.ok((put.body as EnrollmentGroup).primaryKey, "keys answered to the creator");
  const list = await owner.request("GET", "/$strata/enrollments");
  assert.equal(list.status, 200);
  assert.deepEqual((list.body as { groups: { name: string }[] }).groups.map((x) => x.name), ["line-gw"]);
  assert.ok(!JSON.stringify(list.body).includes((put.body as EnrollmentGroup).primaryKey), "no keys in the list");
  const bad = await owner.request("PUT", "/$strata/enrollments/x", { parent: "no-such-gw" });
  assert.equal(bad.status, 409);
  const { key } = await root.addDevice("leaf1");
  const asLeaf = new GatewayClient({
    host: root.address, port: root.port("https"), hostname: root.gw.config.hostname, ca: root.caPem,
    token: () => signSas({ resource: `${root.hubName}/devices/leaf1`, key, expirySecs: Math.floor(Date.now() / 1000) + 600 }),
  });
  t.after(() => asLeaf.close());
  assert.equal((await asLeaf.request("GET", "/$strata/enrollments")).status, 403);
  assert.equal((await owner.request("DELETE", "/$strata/enrollments/line-gw")).status, 200);
  assert.equal((await owner.request("DELETE", "/$strata/enrollments/line-gw")).status, 404);
});
