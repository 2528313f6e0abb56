import { join, resolve } from "node:path";
import type { StrataConfig } from "./schema.js";
import { validateConfig } from "./load.js";

/**
 * The config `strata start` runs without a config file: a root gateway on localhost that the Azure SDKs
 * reach unchanged (hub `localhost`, 127.0.0.1 on 8883/5671/443), its files under `baseDir` (the CLI uses
 * `./.strata`). Only paths are decided here; the CLI creates the PKI and the owner key.
 */
export function embeddedDefaultConfig(baseDir: string): StrataConfig {
  const base = resolve(baseDir);
  return validateConfig(
    {
      hub: "localhost",
      device_id: "strata-root",
      hostname: "localhost",
      data_dir: join(base, "data"),
      // The development PKI's file names (core/pki DEV_PKI_FILES), so every command finds what `start` made.
      tls: {
        cert_file: join(base, "pki", "server.chain.pem"),
        key_file: join(base, "pki", "server.key.pem"),
        ca_file: join(base, "pki", "trust-bundle.pem"),
        edge_ca_cert_file: join(base, "pki", "edge-ca.cert.pem"),
        edge_ca_key_file: join(base, "pki", "edge-ca.key.pem"),
      },
      listen: { address: "127.0.0.1", mqtt: 8883, amqp: 5671, https: 443 },
      service: { owner_key_file: join(base, "secrets", "iothubowner.key") },
    },
    { source: "embedded default config", baseDir: base },
  );
}
