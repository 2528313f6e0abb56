import { definePlugin, TOKENS } from "../../core/index.js";
import { httpsDeviceConfigSchema } from "./config.js";
import { HttpsDevicePlugin, PLUGIN_NAME } from "./plugin.js";

export { httpsDeviceConfigSchema, type HttpsDeviceConfig } from "./config.js";
export { HttpsDevicePlugin, PLUGIN_NAME } from "./plugin.js";
export { httpsDeviceConverter, BATCH_CONTENT_TYPE, type HttpInput, type OutboxCommand } from "./converter.js";

/** `[plugins.https-device]`: IoT Hub's HTTPS device API (telemetry, C2D polling) on the HTTPS listener. */
export default definePlugin({
  manifest: { name: PLUGIN_NAME, apiVersion: "^1", configSchema: httpsDeviceConfigSchema },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: HttpsDevicePlugin });
  },
});
