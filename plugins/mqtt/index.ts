import { definePlugin, TOKENS } from "../../core/index.js";
import { mqttConfigSchema } from "./config.js";
import { MqttPlugin, PLUGIN_NAME } from "./plugin.js";

export { mqttConfigSchema, type MqttConfig } from "./config.js";
export { MqttPlugin, PLUGIN_NAME, WEBSOCKET_PATH, WEBSOCKET_SUBPROTOCOL } from "./plugin.js";
export { decodePropertyBag, encodePropertyBag, inboundFromBag, type DecodedBag } from "./property-bag.js";
export * from "./topics.js";
export { parseClientId, parseUsername, type ClientIdentity, type ConnectInfo } from "./connect-info.js";

/**
 * `[plugins.mqtt]`: IoT Hub's MQTT device protocol over TLS (`[listen] mqtt`) and WebSocket
 * (`/$iothub/websocket` on the HTTPS listener), so unmodified Azure IoT device SDKs connect.
 */
export default definePlugin({
  manifest: {
    name: PLUGIN_NAME,
    apiVersion: "^1",
    configSchema: mqttConfigSchema,
    essential: true,
  },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: MqttPlugin });
  },
});
