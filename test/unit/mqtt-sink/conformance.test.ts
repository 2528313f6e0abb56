import { pluginConformanceSuite, TOKENS } from "../../../core/index.js";
import plugin from "../../../plugins/mqtt-sink/index.js";

// The sink connects lazily (a warm-up attempt at start may fail: the broker need not be up), so the kit
// needs no broker; the hub double takes the sink's registration.
pluginConformanceSuite(plugin, {
  config: { url: "mqtt://127.0.0.1:1" },
  invalidConfig: { qos: 0 },
  provide(c) {
    c.register(TOKENS.Config, { useValue: { hub: "testhub", device_id: "root", data_dir: "/nonexistent" } });
    c.register(TOKENS.Hub, { useValue: { addSink: () => undefined, consume: () => () => undefined } });
  },
});
