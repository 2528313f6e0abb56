import { definePlugin, TOKENS } from "../../core/index.js";
import { amqpConfigSchema } from "./config.js";
import { AmqpPlugin, PLUGIN_NAME } from "./plugin.js";

export { amqpConfigSchema, type AmqpConfig } from "./config.js";
export { AmqpPlugin, PLUGIN_NAME, WEBSOCKET_PATH, WEBSOCKET_SUBPROTOCOL } from "./plugin.js";
export * from "./convert.js";
export * from "./addresses.js";
export { parsePutToken, putTokenReply, verifyPutToken, SAS_TOKEN_TYPE, type PutTokenRequest } from "./cbs.js";
export { verifyPlain } from "./sasl.js";

/**
 * `[plugins.amqp]`: IoT Hub's AMQP 1.0 protocol over TLS (`[listen] amqp`) and WebSocket (`/$iothub/websocket`,
 * `AMQPWSB10`, on the HTTPS listener): device links, CBS, and on the root the service side (C2D, feedback).
 */
export default definePlugin({
  manifest: {
    name: PLUGIN_NAME,
    apiVersion: "^1",
    configSchema: amqpConfigSchema,
    essential: true,
  },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: AmqpPlugin });
  },
});
