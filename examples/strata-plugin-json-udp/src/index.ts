// strata-plugin-json-udp: a third-party translation plugin. It imports only `strata` (core's public face),
// `zod` and Node's own modules, so core's internals can change under it.
import { definePlugin, TOKENS } from "strata";
import { jsonUdpConfigSchema } from "./config.js";
import { JsonUdpPlugin, PLUGIN_NAME } from "./plugin.js";

export { jsonDatagramConverter, type UdpCommand } from "./converter.js";
export { jsonUdpConfigSchema, type JsonUdpConfig } from "./config.js";
export { JsonUdpPlugin, PLUGIN_NAME } from "./plugin.js";

export default definePlugin({
  manifest: { name: PLUGIN_NAME, apiVersion: "^1", configSchema: jsonUdpConfigSchema },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: JsonUdpPlugin });
  },
});
