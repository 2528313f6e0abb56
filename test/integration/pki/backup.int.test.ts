import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { restoreBackup, takeBackup } from "../../../core/cli/backup.js";
import { loadConfig } from "../../../core/config/load.js";
import { Gateway } from "../../../core/gateway.js";
import { silentLogger } from "../../../core/log.js";
import { isStrataError } from "../../../core/errors.js";
import { startTestGateway } from "../../support/gateway.js";

test("a root backed up under load and restored on a fresh data dir serves the same identities and twins", async (t) => {
  const src = await startTestGateway({ address: "127.0.0.72" });
  t.after(() => src.stop({ remove: true }));
  const work = mkdtempSync(join(tmpdir(), "strata-backup-"));
  t.after(() => rmSync(work, { recursive: true, force: true }));

  // 1. what must survive: 20 devices with desired and reported twin properties
  for (let i = 0; i < 20; i++) {
    await src.addDevice(`dev-${i}`);
    await src.gw.hub.patchDesired(`dev-${i}`, { setpoint: i });
    await src.gw.hub.patchReported(`dev-${i}`, { temp: 20 + i });
  }

  // 2. load while the backup runs: registrations and twin patches keep coming
  let stopLoad = false;
  let written = 0;
  const load = (async () => {
    for (let i = 0; !stopLoad; i++) {
      await src.addDevice(`load-${i}`);
      await src.gw.hub.patchDesired(`dev-${i % 20}`, { load: i });
      written++;
    }
  })();
  const file = join(work, "root.backup");
  const taken = await takeBackup(src.gw.config, file, { httpsPort: src.port("https") });
  stopLoad = true;
  await load;
  assert.ok(written > 0, "writes happened during the backup");
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.ok(taken.records >= 40 && taken.files >= 4, `records ${taken.records}, files ${taken.files}`);

  // 3. restore on a fresh data dir and start a gateway from it
  const restored = await restoreBackup(file, { dir: join(work, "etc"), dataDir: join(work, "data") });
  assert.equal(statSync(join(work, "etc", "server.key.pem")).mode & 0o777, 0o600);
  await assert.rejects(restoreBackup(file, { dir: join(work, "etc2"), dataDir: join(work, "data") }), (e) => isStrataError(e, "STRATA_RESTORE_NOT_EMPTY"));
  const config = loadConfig(restored.configFile);
  const gw = await Gateway.start({ config, logger: silentLogger(), defaultPlugins: [] });
  t.after(() => gw.stop());

  // 4. the same identities (keys included) and twins as at the backup: every dev-*, and a consistent prefix of load-*
  for (let i = 0; i < 20; i++) {
    const id = `dev-${i}`;
    assert.deepEqual(gw.identities.get(id)?.auth, src.gw.identities.get(id)?.auth);
    const twin = await gw.hub.getTwin(id);
    assert.equal((twin.properties.desired as Record<string, unknown>).setpoint, i);
    assert.equal((twin.properties.reported as Record<string, unknown>).temp, 20 + i);
  }
  const loadIds = gw.identities.list().map((r) => r.id).filter((id) => id.startsWith("load-")).map((id) => Number(id.slice(5))).sort((a, b) => a - b);
  assert.deepEqual(loadIds, loadIds.map((_, i) => i), "a snapshot: load-0..n without gaps");
  assert.equal(gw.config.service?.owner_key_file !== undefined, true);
});
