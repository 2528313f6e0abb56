import { definePlugin, TOKENS } from "../../core/index.js";
import { lineProtocolConfigSchema } from "./config.js";
import { LineProtocolPlugin, PLUGIN_NAME } from "./plugin.js";

export { lineProtocolConfigSchema, type LineProtocolConfig } from "./config.js";
export { LineProtocolPlugin, PLUGIN_NAME, TCP_LISTENER, UDP_LISTENER } from "./plugin.js";
export { jsonLineConverter, csvLineConverter, lineConverters, type LineCommand } from "./converters.js";

/** `[plugins.line-protocol]`: newline-delimited JSON or CSV over TCP and UDP → telemetry. */
export default definePlugin({
  manifest: { name: PLUGIN_NAME, apiVersion: "^1", configSchema: lineProtocolConfigSchema },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: LineProtocolPlugin });
  },
});
