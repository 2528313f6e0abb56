// Public face of core/identity: the Identities service and the SAS / connection-string helpers that the
// heads, the upstream link and the CLI share.
export * from "./types.js";
export { IdentityRegistry, SAS_CLOCK_SKEW_SECS, OWNER_POLICY, type IdentityRegistryOptions } from "./registry.js";
export {
  parseSasToken,
  identityFromSasToken,
  signSas,
  generateKey,
  deviceConnectionString,
  serviceConnectionString,
  type SignSasOptions,
  type DeviceConnectionStringOptions,
} from "./sas.js";
export { MAX_CHAIN_LENGTH } from "./chain.js";
export { thumbprints, normalizeThumbprint } from "./x509.js";
export { ensureEdgeModules, EDGE_SYSTEM_MODULES } from "./edge-modules.js";
