import { definePlugin, TOKENS } from "../../core/index.js";
import { mqttSinkConfigSchema } from "./config.js";
import { MqttSinkPlugin, PLUGIN_NAME } from "./sink.js";

export { mqttSinkConfigSchema, type MqttSinkConfig } from "./config.js";
export { MqttSinkPlugin, type MqttSinkStats } from "./sink.js";
export { toEnvelope, toOutgoing, userProperties, encodeBody, STRATA_ID_PROPERTY, STRATA_ENQUEUED_PROPERTY, type Envelope } from "./payload.js";
export { compileTopic, topicRouter, topicLevel, templateProblem, TOPIC_PLACEHOLDERS } from "./topic.js";

/**
 * `[plugins.mqtt-sink]`: republishes every message routed to the sink (on the root, everything routed to
 * `$upstream`) to an external MQTT broker, as a durable endpoint: a message leaves Strata's queue only
 * after the broker acknowledged it.
 */
export default definePlugin({
  manifest: {
    name: PLUGIN_NAME,
    apiVersion: "^1",
    configSchema: mqttSinkConfigSchema,
  },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: MqttSinkPlugin });
  },
});
