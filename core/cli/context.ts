import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { DEFAULT_CONFIG_PATH, loadConfig } from "../config/load.js";
import { embeddedDefaultConfig } from "../config/defaults.js";
import type { StrataConfig } from "../config/schema.js";
import { generateKey } from "../identity/sas.js";
import { ensureDevPki, type DevPki } from "../pki/dev-pki.js";

/** Where the embedded default keeps its files: `./.strata` of the directory `strata` runs in. */
export const EMBEDDED_DIR = ".strata";

export interface ResolvedConfig {
  config: StrataConfig;
  /** "embedded default" or the file's path. */
  source: string;
  embedded: boolean;
  /** The dev PKI, for the embedded default. */
  devPki?: DevPki;
}

export interface ConfigFlags {
  config?: string;
  address?: string;
}

/**
 * The config a command runs with: `--config`, else /etc/strata/strata.toml when present, else the embedded
 * default (a root gateway on 127.0.0.1, files under ./.strata, dev PKI and owner key created on first use).
 * `--address` moves every listener to another loopback address (and the dev certificate covers it).
 */
export async function resolveConfig(flags: ConfigFlags, opts: { prepareEmbedded: boolean }): Promise<ResolvedConfig> {
  const file = flags.config ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (file) {
    const config = loadConfig(file);
    if (flags.address) config.listen.address = flags.address;
    return { config, source: resolve(file), embedded: false };
  }
  const base = resolve(EMBEDDED_DIR);
  const config = embeddedDefaultConfig(base);
  if (flags.address) config.listen.address = flags.address;
  if (!opts.prepareEmbedded) return { config, source: "embedded default", embedded: true };

  const address = config.listen.address;
  const devPki = await ensureDevPki(join(base, "pki"), {
    hostnames: ["localhost"],
    ips: [...new Set(["127.0.0.1", address])],
    gatewayId: config.device_id,
  });
  config.tls = {
    cert_file: devPki.paths.serverChain,
    key_file: devPki.paths.serverKey,
    ca_file: devPki.paths.trustBundle,
    // The dev edge CA lets `strata child add` issue children's certificates on the embedded default root.
    edge_ca_cert_file: devPki.paths.edgeCaCert,
    edge_ca_key_file: devPki.paths.edgeCaKey,
  };
  if (config.service) ensureSecretFile(config.service.owner_key_file);
  return { config, source: "embedded default", embedded: true, devPki };
}

/** Creates a random base64 key file (0600) when missing; returns its content. */
export function ensureSecretFile(path: string): string {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, generateKey() + "\n", { mode: 0o600 });
  }
  chmodSync(path, 0o600);
  return readFileSync(path, "utf8").trim();
}

/**
 * The host clients should dial: the gateway's hostname, except when a localhost gateway was moved to another
 * loopback address (`--address 127.0.0.N`), where "localhost" would reach the wrong one.
 */
export function dialHost(config: StrataConfig): string {
  return config.hostname === "localhost" && config.listen.address !== "127.0.0.1" ? config.listen.address : config.hostname;
}
