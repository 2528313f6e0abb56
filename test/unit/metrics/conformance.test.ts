// The plugin conformance kit on the metrics plugin, with real core services provided the way the gateway does.
import { join } from "node:path";
import { Listeners, MetricsRegistry, pluginConformanceSuite, TOKENS } from "../../../core/index.js";
import plugin from "../../../plugins/metrics/index.js";
import { coreFixture } from "../../support/core-fixture.js";

const core = coreFixture("strata-metrics-conf");

pluginConformanceSuite(plugin, {
  invalidConfig: { report_interval_secs: -1 },
  // A long check interval: the kit's leak check runs start/stop quickly and the first self-check is async.
  config: { check_interval_secs: 3600 },
  provide(container) {
    const { dir, store, identities, pki } = core;
    const hub = core.hub();
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
    container.register(TOKENS.HttpFront, { useValue: core.front() });
  },
});
