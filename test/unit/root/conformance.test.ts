// The plugin conformance kit on the root plugin, with real core services (store, identities, hub, an
// HTTPS front that never listens) provided the way the gateway provides them.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CoreHub, HttpFront, IdentityRegistry, isStrataError, LevelStore, pluginConformanceSuite, RouteTable, silentLogger, TOKENS,
  type IdentityRecord, type StrataConfig,
} from "../../../core/index.js";
import { ensureDevPki, type DevPki } from "../../../core/pki/index.js";
import plugin, { RootPlugin, rootConfigSchema } from "../../../plugins/root/index.js";

const dir = mkdtempSync(join(tmpdir(), "strata-root-conf-"));
const logger = silentLogger();
const store = new LevelStore({ path: join(dir, "store"), gatewayId: "gw-root", quotaBytes: 1 << 30, logger, sweepIntervalMs: 0 });
let identities: IdentityRegistry;
let pki: DevPki;
before(async () => {
  await store.open();
  identities = new IdentityRegistry({ self: "gw-root", hubName: "hub", hostnames: [], kv: store.kv<IdentityRecord>("identities"), policies: [], logger });
  await identities.load();
  pki = await ensureDevPki(join(dir, "pki"), { hostnames: ["localhost"], ips: ["127.0.0.1"] });
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

pluginConformanceSuite(plugin, {
  invalidConfig: { telemetry_log: { max_bytes: -1 } },
  provide(container) {
    const router = new RouteTable();
    container.register(TOKENS.Config, { useValue: { data_dir: join(dir, "data"), hub: "hub", device_id: "gw-root" } });
    container.register(TOKENS.Store, { useValue: store });
    container.register(TOKENS.Identities, { useValue: identities });
    container.register(TOKENS.Hub, { useValue: new CoreHub({ self: "gw-root", isRoot: true, store, router, identities, logger }) });
    container.register(TOKENS.HttpFront, {
      useValue: new HttpFront({ tls: { cert: pki.server.chain, key: pki.server.key }, port: 0, logger }),
    });
  },
});

test("a gateway with a [parent] refuses to start the root plugin, naming the fix", async () => {
  const config = { data_dir: join(dir, "child"), parent: { hostname: "parent.local" } } as unknown as StrataConfig;
  const p = new RootPlugin(
    new CoreHub({ self: "gw-child", isRoot: false, store, router: new RouteTable(), identities, logger }),
    identities, store,
    new HttpFront({ tls: { cert: pki.server.chain, key: pki.server.key }, port: 0, logger }),
    config, rootConfigSchema.parse({}), logger,
  );
  await assert.rejects(p.start(new AbortController().signal), (err: unknown) =>
    isStrataError(err, "STRATA_ROOT_HAS_PARENT") && /remove \[plugins\.root\]/.test((err as Error).message));
  await p.stop();
});

test("config: a segment larger than half the size budget is refused, naming the key", () => {
  const r = rootConfigSchema.safeParse({ telemetry_log: { max_bytes: 2 * 1024 * 1024, segment_bytes: 2 * 1024 * 1024 } });
  assert.equal(r.success, false);
  assert.deepEqual(r.error!.issues[0]!.path, ["telemetry_log", "segment_bytes"]);
  assert.equal(rootConfigSchema.parse({}).telemetry_log.max_age_hours, 168);
});
