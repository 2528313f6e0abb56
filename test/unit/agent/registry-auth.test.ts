import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { StrataConfig } from "../../../core/config/schema.js";
import { IdentityRegistry } from "../../../core/identity/registry.js";
import { generateKey } from "../../../core/identity/sas.js";
import { silentLogger } from "../../../core/log.js";
import { LevelStore } from "../../../core/store/level-store.js";
import { parseDeployment } from "../../../plugins/agent/manifest.js";
import { registryAuthFor } from "../../../plugins/agent/registry-auth.js";

test("container pulls: the manifest's registryCredentials first, else this gateway's identity with a SAS token its front verifies", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "strata-regauth-"));
  const store = new LevelStore({ path: join(dir, "db"), gatewayId: "gw", quotaBytes: 1 << 26, logger: silentLogger(), sweepIntervalMs: 0 });
  await store.open();
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const identities = new IdentityRegistry({ self: "gw", hubName: "hub", hostnames: [], kv: store.kv("identities"), logger: silentLogger() });
  await identities.load();
  const key = generateKey();
  await identities.put({ id: "gw", deviceId: "gw", status: "enabled", auth: { type: "sas", primaryKey: key, secondaryKey: generateKey() }, edge: true });
  const keyFile = join(dir, "gw.key");
  writeFileSync(keyFile, key, { mode: 0o600 });
  const config = { hub: "hub", device_id: "gw", identity: { key_file: keyFile } } as unknown as StrataConfig;

  const deployment = parseDeployment({
    schemaVersion: "1.1", $version: 3,
    runtime: { type: "docker", settings: { registryCredentials: { acr: { address: "acr.example:5000", username: "puller", password: "s3cret" }, broken: { address: 1 } } } },
    systemModules: {}, modules: {},
  }, undefined);
  assert.deepEqual(deployment.registryCredentials, [{ address: "acr.example:5000", username: "puller", password: "s3cret" }]);

  const auth = registryAuthFor(config, "front.local:443", () => deployment.registryCredentials);
  assert.deepEqual(auth("ACR.example:5000"), { username: "puller", password: "s3cret" });
  assert.equal(auth("elsewhere.example"), undefined, "no credentials leak to a registry nobody named");
  const own = auth("front.local:443");
  assert.ok(own);
  assert.equal(own.username, "gw");
  const verdict = identities.verifySas("gw", own.password);
  assert.equal(verdict.ok, true, "the gateway's front (core Identities) accepts the token");

  const noIdentity = registryAuthFor({ hub: "hub", device_id: "root" } as unknown as StrataConfig, "front.local:443", () => []);
  assert.equal(noIdentity("front.local:443"), undefined);
});
