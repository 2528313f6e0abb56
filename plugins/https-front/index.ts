import { definePlugin, TOKENS } from "../../core/index.js";
import { httpsFrontConfigSchema } from "./config.js";
import { HttpsFrontPlugin } from "./plugin.js";

export { httpsFrontConfigSchema, SERVICE_API_PREFIXES, type HttpsFrontConfig } from "./config.js";
export { HttpsFrontPlugin, resolveDestination, type Destination } from "./plugin.js";
export { ParentProxy, type ParentTarget } from "./parent-proxy.js";

/** `[plugins.https-front]`: forwards registry and blob requests, and allow-listed paths, to the parent's front. */
export default definePlugin({
  manifest: {
    name: "https-front",
    apiVersion: "^1",
    configSchema: httpsFrontConfigSchema,
  },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: HttpsFrontPlugin });
  },
});
