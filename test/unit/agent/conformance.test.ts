import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pluginConformanceSuite, RouteTable, silentLogger, TOKENS, validateConfig, type DependencyContainer } from "../../../core/index.js";
import agent from "../../../plugins/agent/index.js";

function provide(c: DependencyContainer): void {
  const dir = mkdtempSync(join(tmpdir(), "strata-agent-conf-"));
  const config = validateConfig({
    hub: "h", device_id: "gw", hostname: "localhost", data_dir: join(dir, "data"),
    tls: { cert_file: "/dev/null", key_file: "/dev/null", ca_file: "/dev/null" },
  }, { source: "conformance", baseDir: dir });
  c.register(TOKENS.Config, { useValue: config });
  c.register(TOKENS.Router, { useValue: new RouteTable() });
  c.register(TOKENS.Hub, {
    useValue: {
      attach: () => ({ changed: () => undefined, detach: () => undefined }),
      getTwin: async (id: string) => ({ deviceId: id, version: 1, tags: {}, properties: { desired: { $version: 1 }, reported: { $version: 1 } } }),
      patchReported: async () => 2,
    },
  });
  c.register(TOKENS.Identities, { useValue: { get: () => undefined, put: async (r: unknown) => ({ ...(r as object), generation: 1 }) } });
  c.register(TOKENS.Logger, { useValue: silentLogger() });
}

pluginConformanceSuite(agent, { provide, invalidConfig: { backoff_min_ms: -1 } });
