import type { StrataConfig } from "../config/schema.js";
import { readSecret } from "../config/secret.js";
import { StrataError } from "../errors.js";
import type { Identities } from "../identity/types.js";
import type { Logger } from "../log.js";
import { UpstreamLink, type UpstreamLinkOptions } from "./link.js";

/**
 * The upstream link a config asks for: undefined on the root (no `[parent]`). The key file is read at every
 * (re)connect, so a rotated key is picked up without a restart.
 */
export function upstreamFromConfig(
  config: StrataConfig,
  ca: string,
  identities: Pick<Identities, "authChain"> & Partial<Pick<Identities, "on">>,
  logger: Logger,
  overrides: Partial<UpstreamLinkOptions> = {},
): UpstreamLink | undefined {
  const parent = config.parent;
  if (!parent) return undefined;
  const identity = config.identity;
  if (!identity) {
    throw new StrataError("STRATA_UPSTREAM_NO_IDENTITY", "[parent] is set but [identity] is missing; give this gateway's key_file");
  }
  if (identity.cert_file) {
    throw new StrataError(
      "STRATA_UPSTREAM_X509_UNSUPPORTED",
      "identity.cert_file: the upstream link authenticates with a SAS key only so far; register this gateway with a symmetric key and set [identity] key_file alone",
    );
  }
  const keyFile = identity.key_file;
  readSecret(keyFile, "identity.key_file"); // fail at start-up, not at the first connect
  return new UpstreamLink({
    self: config.device_id,
    hub: config.hub,
    parent,
    ca,
    key: () => readSecret(keyFile, "identity.key_file"),
    identities,
    logger,
    ...overrides,
  });
}
