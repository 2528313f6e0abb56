import { definePlugin, TOKENS } from "../../core/index.js";
import { coapConfigSchema } from "./config.js";
import { CoapPlugin, PLUGIN_NAME } from "./plugin.js";

export { coapConfigSchema, type CoapConfig } from "./config.js";
export { CoapPlugin, PLUGIN_NAME, COAP_LISTENER } from "./plugin.js";
export {
  coapConverters, coapJsonConverter, coapSenmlConverter, supportedFormat, JSON_FORMAT, SENML_FORMAT,
  type CoapInput, type CoapCommand, type CoapCommandDraft,
} from "./converters.js";
export { CommandMailbox, type CommandObserver, type MailboxOptions, type DeviceAnswer } from "./mailbox.js";
export { routeOf, parseAnswer, type CoapRoute } from "./resources.js";

/** `[plugins.coap]`: a CoAP server for constrained devices (POST → telemetry, GET → twin desired, commands by observe). */
export default definePlugin({
  manifest: { name: PLUGIN_NAME, apiVersion: "^1", configSchema: coapConfigSchema },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: CoapPlugin });
  },
});
