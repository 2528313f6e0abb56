import { definePlugin, TOKENS } from "../../core/index.js";
import { registryCacheConfigSchema } from "./config.js";
import { RegistryCachePlugin } from "./plugin.js";

export { registryCacheConfigSchema, type RegistryCacheConfig, type UpstreamConfig } from "./config.js";
export { RegistryCachePlugin, registryCacheDataDir, gatewayCredentials } from "./plugin.js";
export { RegistryCache, type CacheStats, type RoutedUpstream } from "./cache.js";
export { UpstreamClient, type BasicCredentials } from "./upstream/client.js";
export { parseChallenges, type Challenge } from "./upstream/challenge.js";
export { registrableDomain, sameRegistrableDomain } from "./upstream/domain.js";
export { acceptedManifestTypes, MANIFEST_TYPES } from "./media-types.js";
export { parseRegistryPath, parseRange } from "./routes.js";

/** `[plugins.registry-cache]`: a verified, single-flight OCI pull-through cache at `/v2/` on the HTTPS port. */
export default definePlugin({
  manifest: {
    name: "registry-cache",
    apiVersion: "^1",
    configSchema: registryCacheConfigSchema,
  },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: RegistryCachePlugin });
  },
});
