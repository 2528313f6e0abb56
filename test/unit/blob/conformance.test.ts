import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pluginConformanceSuite, silentLogger, TOKENS, validateConfig, type DependencyContainer } from "../../../core/index.js";
import blob from "../../../plugins/blob/index.js";

function provide(c: DependencyContainer): void {
  const dir = mkdtempSync(join(tmpdir(), "strata-blob-conf-"));
  const config = validateConfig({
    hub: "h", device_id: "gw", hostname: "localhost", data_dir: join(dir, "data"),
    tls: { cert_file: "/dev/null", key_file: "/dev/null", ca_file: "/dev/null" },
  }, { source: "conformance", baseDir: dir });
  c.register(TOKENS.Config, { useValue: config });
  c.register(TOKENS.HttpFront, { useValue: { mountRaw: () => () => undefined } });
  c.register(TOKENS.Hub, { useValue: { attach: () => ({ changed: () => undefined, detach: () => undefined }) } });
  c.register(TOKENS.Identities, { useValue: { get: () => undefined, put: async (r: unknown) => r } });
  c.register(TOKENS.Logger, { useValue: silentLogger() });
}

pluginConformanceSuite(blob, { provide, invalidConfig: { quota_bytes: -1 } });
