import { readSecret, signSas, type StrataConfig } from "../../core/index.js";

/** A manifest's `runtime.settings.registryCredentials` entry (IoT Edge's shape). */
export interface RegistryCredential {
  address: string;
  username: string;
  password: string;
}

/**
 * Who the engine pulls as: the manifest's `registryCredentials` for that registry address (IoT Edge's way),
 * else, for the pull-through host (this gateway's front), this gateway's own identity with a fresh SAS
 * token as the password — the front's registry cache accepts a gateway identity, so no pull user has to be
 * configured on any layer. The key file is read per pull (a rotated key needs no restart); no
 * `[identity]` (a root without one): no credentials, and the front's refusal names why.
 */
export function registryAuthFor(
  config: StrataConfig,
  pullThrough: string,
  manifestCredentials: () => readonly RegistryCredential[],
  now: () => number = Date.now,
): (registry: string) => { username: string; password: string } | undefined {
  return (registry) => {
    const listed = manifestCredentials().find((c) => c.address.toLowerCase() === registry.toLowerCase());
    if (listed) return { username: listed.username, password: listed.password };
    const keyFile = config.identity?.key_file;
    if (!pullThrough || registry !== pullThrough || !keyFile || config.identity?.cert_file) return undefined;
    const key = readSecret(keyFile, "identity.key_file");
    const password = signSas({ resource: `${config.hub}/devices/${config.device_id}`, key, expirySecs: Math.floor(now() / 1000) + 3600 });
    return { username: config.device_id, password };
  };
}

/** `registryCredentials` out of a manifest's `$edgeAgent` desired `runtime.settings`, ignoring malformed entries. */
export function credentialsFromRuntime(runtime: unknown): RegistryCredential[] {
  const creds = (runtime as { settings?: { registryCredentials?: unknown } } | undefined)?.settings?.registryCredentials;
  if (!creds || typeof creds !== "object") return [];
  const out: RegistryCredential[] = [];
  for (const c of Object.values(creds as Record<string, unknown>)) {
    const { address, username, password } = (c ?? {}) as Record<string, unknown>;
    if (typeof address === "string" && typeof username === "string" && typeof password === "string") out.push({ address, username, password });
  }
  return out;
}
