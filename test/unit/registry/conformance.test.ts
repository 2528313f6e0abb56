import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pluginConformanceSuite, silentLogger, TOKENS, validateConfig, type DependencyContainer } from "../../../core/index.js";
import registryCache from "../../../plugins/registry-cache/index.js";
import httpsFront from "../../../plugins/https-front/index.js";

/** A stand-in for core's HttpFront: accepts raw mounts and fastify plugins (the plugins only mount, they never listen). */
function fakeFront(): unknown {
  return { mountRaw: () => () => undefined, register: () => undefined };
}

function provide(parent: boolean) {
  const dir = mkdtempSync(join(tmpdir(), "strata-registry-conf-"));
  const config = validateConfig({
    hub: "h",
    device_id: "gw",
    hostname: "localhost",
    data_dir: join(dir, "data"),
    tls: { cert_file: "/dev/null", key_file: "/dev/null", ca_file: "/dev/null" },
    ...(parent ? { identity: { key_file: "/dev/null" }, parent: { hostname: "localhost", https_port: 9 } } : {}),
  }, { source: "conformance", baseDir: dir });
  return (c: DependencyContainer): void => {
    c.register(TOKENS.Config, { useValue: config });
    c.register(TOKENS.HttpFront, { useValue: fakeFront() });
    c.register(TOKENS.Identities, { useValue: { verifySas: () => ({ ok: false, reason: "malformed", detail: "" }), get: () => undefined } });
    c.register(TOKENS.Logger, { useValue: silentLogger() });
  };
}

pluginConformanceSuite(registryCache, { provide: provide(false), invalidConfig: { quota_bytes: -1 } });
pluginConformanceSuite(httpsFront, { provide: provide(true), invalidConfig: { registry: "sideways" } });
