// The plugin conformance kit on the metrics plugin, with real core services provided the way the gateway does.
import { after, before } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CoreHub, HttpFront, IdentityRegistry, LevelStore, Listeners, MetricsRegistry, pluginConformanceSuite, RouteTable, silentLogger, TOKENS,
  type IdentityRecord,
} from "../../../core/index.js";
import { ensureDevPki, type DevPki } from "../../../core/pki/index.js";
import plugin from "../../../plugins/metrics/index.js";

const dir = mkdtempSync(join(tmpdir(), "strata-metrics-conf-"));
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
  invalidConfig: { report_interval_secs: -1 },
  // A long check interval: the kit's leak check runs start/stop quickly and the first self-check is async.
  config: { check_interval_secs: 3600 },
  provide(container) {
    const hub = new CoreHub({ self: "gw-root", isRoot: true, store, router: new RouteTable(), identities, logger });
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.attachCore({ deviceId: "gw-root", isRoot: true, hub, store, listeners: new Listeners() });
    container.register(TOKENS.Config, {
      useValue: {
        data_dir: join(dir, "data"), hub: "hub", device_id: "gw-root", hostname: "localhost",
        tls: { cert_file: pki.paths.serverChain, key_file: pki.paths.serverKey, ca_file: pki.paths.trustBundle },
        listen: { address: "127.0.0.1", mqtt: 0, amqp: 0, https: 0 }, store: { quota_bytes: 1 << 30 }, plugins: {},
      },
    });
    container.register(TOKENS.Store, { useValue: store });
    container.register(TOKENS.Identities, { useValue: identities });
    container.register(TOKENS.Hub, { useValue: hub });
    container.register(TOKENS.Metrics, { useValue: metrics });
    container.register(TOKENS.HttpFront, { useValue: new HttpFront({ tls: { cert: pki.server.chain, key: pki.server.key }, port: 0, logger }) });
  },
});
