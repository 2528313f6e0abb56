import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { stringify } from "smol-toml";
import { childAdd, childInstall, listChildren } from "../../../core/cli/child.js";
import { main } from "../../../core/cli/main.js";
import type { Output } from "../../../core/cli/output.js";
import { loadConfig, type StrataConfig } from "../../../core/config/index.js";
import { Gateway } from "../../../core/gateway.js";
import { silentLogger } from "../../../core/log.js";
import { IDENTITIES_PATH } from "../../../core/scope/index.js";
import { localGatewayClient } from "../../../core/cli/child.js";
import { startTestGateway } from "../../support/gateway.js";
import { waitForIdentities } from "./helpers.js";

function capture(): Output & { text: () => string } {
  const lines: string[] = [];
  return { info: (s) => lines.push(s), error: (s) => lines.push(s), text: () => lines.join("\n") };
}

/** The TOML an operator would have for a running gateway (with the port it actually bound). */
function configFileFor(config: StrataConfig, httpsPort: number, dir: string): string {
  const file = join(dir, "strata.toml");
  writeFileSync(file, stringify({
    hub: config.hub, device_id: config.device_id, hostname: config.hostname, data_dir: config.data_dir,
    tls: config.tls,
    listen: { address: config.listen.address, mqtt: 0, amqp: 0, https: httpsPort },
    ...(config.identity ? { identity: config.identity } : {}),
    ...(config.parent ? { parent: config.parent } : {}),
    ...(config.service ? { service: config.service } : {}),
  }));
  return file;
}

/** Starts an installed child in this process, on ports 0 (the bundle's standard ports may be taken). */
async function startInstalled(configFile: string): Promise<Gateway> {
  const config = loadConfig(configFile);
  config.listen = { ...config.listen, mqtt: 0, amqp: 0, https: 0 };
  return Gateway.start({ config, logger: silentLogger(), defaultPlugins: [] });
}

test("child add → bundle → child install gives a config strata check accepts; the child syncs; child list shows it", async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), "strata-child-cli-"));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const root = await startTestGateway({ deviceId: "root" });
  t.after(() => root.stop({ remove: true }));
  const rootConfig = configFileFor(root.gw.config, root.port("https"), root.dir);

  const bundleFile = join(tmp, "gw1.bundle.json");
  const add = capture();
  const addCode = await main(["child", "add", "gw1", "--config", rootConfig, "--hostname", "localhost", "--address", "127.0.0.1", "--out", bundleFile, "--data-dir", join(tmp, "gw1-data")], add);
  assert.equal(addCode, 0, add.text());
  assert.equal(statSync(bundleFile).mode & 0o777, 0o600, "the bundle holds keys");
  const rec = root.gw.identities.get("gw1");
  assert.ok(rec?.edge && rec.parent === "root", "registered at the root as an edge child of root");

  const dir = join(tmp, "etc-gw1");
  const install = capture();
  assert.equal(await main(["child", "install", bundleFile, "--dir", dir], install), 0, install.text());
  assert.match(install.text(), /strata start --config .*strata\.toml/);
  for (const key of ["identity.key", "server.key.pem", "edge-ca.key.pem"]) assert.equal(statSync(join(dir, key)).mode & 0o777, 0o600, key);
  const installed = loadConfig(join(dir, "strata.toml"));
  assert.equal(installed.parent?.hostname, "localhost");
  assert.equal(installed.parent?.address, "127.0.0.1");
  assert.equal(installed.parent?.https_port, root.port("https"));
  assert.equal(installed.listen.address, "127.0.0.1");

  const check = capture();
  const checkCode = await main(["check", "--config", join(dir, "strata.toml")], check);
  assert.equal(checkCode, 0, check.text());
  assert.match(check.text(), /covers hostname localhost/);
  assert.match(check.text(), /https 127\.0\.0\.1:\d+ reachable, certificate verified/);

  const gw1 = await startInstalled(join(dir, "strata.toml"));
  t.after(() => gw1.stop());
  await waitForIdentities(gw1.identities, () => gw1.identities.get("gw1")?.parent === "root", 10_000, "gw1's own record at gw1");
  const list = capture();
  assert.equal(await main(["child", "list", "--config", rootConfig], list), 0, list.text());
  assert.match(list.text(), /^gw1\s+enabled\s+link (connected|offline)\s+scope sync (polling|last \d+ s ago)\s+subtree 3$/m); // gw1, gw1/$edgeAgent, gw1/$edgeHub
});

test("a chain of five set up only with child add and child install: registration climbs four hops and the record flows back down", async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), "strata-chain-"));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const root = await startTestGateway({ deviceId: "root" });
  t.after(() => root.stop({ remove: true }));
  let parentConfig: StrataConfig = root.gw.config;
  let parentPort = root.port("https");
  const chain: Gateway[] = [];
  for (const id of ["gw1", "gw2", "gw3", "gw4"]) {
    const bundle = await childAdd(parentConfig, { childId: id, hostname: "localhost", address: "127.0.0.1", httpsPort: parentPort, dataDir: join(tmp, `${id}-data`) });
    const gw = await startInstalled(childInstall(bundle, join(tmp, id)));
    chain.push(gw);
    t.after(() => gw.stop());
    await waitForIdentities(gw.identities, () => !!gw.identities.get(id), 10_000, `${id} synced`);
    parentConfig = gw.config;
    parentPort = gw.listeners.get("https")!.port;
  }
  const bottom = chain[3]!;
  assert.deepEqual(root.gw.identities.authChain("gw4"), ["gw4", "gw3", "gw2", "gw1", "root"]);
  // gw4's server certificate chains through four edge CAs to the root CA: gw4's children can verify it.
  const chainPem = readFileSync(bottom.config.tls.cert_file, "utf8");
  assert.equal((chainPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 5, "leaf + edge CAs of root, gw1, gw2, gw3");

  const client = localGatewayClient(bottom.config, bottom.listeners.get("https")!.port);
  t.after(() => client.close());
  const res = await client.request("POST", IDENTITIES_PATH, { deviceId: "leaf-bottom", parent: "gw4" });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(root.gw.identities.get("leaf-bottom")?.parent, "gw4", "decided at the root");
  // A device added at the root under gw4 flows down four layers.
  await root.addDevice("leaf-from-root", { parent: "gw4" });
  const took = await waitForIdentities(bottom.identities, () => !!bottom.identities.get("leaf-from-root"), 10_000, "leaf-from-root at gw4");
  assert.ok(took < 5000, `four layers took ${took} ms`);
  assert.deepEqual(bottom.identities.authChain("leaf-from-root"), ["leaf-from-root", "gw4"]);
  // child add created gw4's runtime module identities at the root, as IoT Hub does for edge devices; they came down.
  assert.equal(bottom.identities.get("gw4/$edgeAgent")?.moduleId, "$edgeAgent");
  assert.equal(bottom.identities.get("gw4/$edgeHub")?.moduleId, "$edgeHub");
  const kids = await listChildren(chain[2]!.config, chain[2]!.listeners.get("https")!.port);
  assert.deepEqual(kids.map((k) => [k.id, k.subtree]), [["gw4", 5]]); // gw4 with its $edgeAgent and $edgeHub, and two leaves
});
