import { z } from "zod";
import { templateProblem } from "./topic.js";

const topicTemplate = z.string().min(1).superRefine((t, ctx) => {
  const problem = templateProblem(t);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/**
 * `[plugins.mqtt-sink]`: where and how the root republishes what is routed to it. Defaults alone make a
 * valid config (a broker on localhost:1883, MQTT 5, raw payloads with properties as user properties).
 */
export const mqttSinkConfigSchema = z.strictObject({
  /**
   * The sink's name: a route names it (`FROM /messages/* INTO mqtt`), its queue is `sink:<name>`, and on the
   * root everything routed to `$upstream` reaches it too. The router's sink-name syntax: an identifier.
   */
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, {
    message: "must be a route identifier: up to 64 letters, digits and _, not starting with a digit",
  }).default("mqtt"),
  /** The broker: mqtt://host[:port] or mqtts://host[:port] (TLS). */
  url: z.string().regex(/^mqtts?:\/\/[^/\s]+\/?$/, { message: "must be mqtt://host[:port] or mqtts://host[:port]" }).default("mqtt://127.0.0.1:1883"),
  /** CA bundle (PEM) that the broker's certificate must chain to, for mqtts://; absent = the system's CAs. */
  ca_file: z.string().min(1).optional(),
  /** Client certificate and key (PEM) when the broker authenticates clients by certificate. */
  cert_file: z.string().min(1).optional(),
  key_file: z.string().min(1).optional(),
  username: z.string().min(1).optional(),
  /** The password lives in a file (mode 0600), never in the config. */
  password_file: z.string().min(1).optional(),
  /** Client id at the broker; default `strata-<device_id>-<name>`. Keep it unique per gateway. */
  client_id: z.string().min(1).max(65535).optional(),
  /** 5 (user properties carry the message properties) or 4 (MQTT 3.1.1: use format = "envelope"). */
  protocol_version: z.union([z.literal(4), z.literal(5)]).default(5),
  /** "raw": the body as payload; "envelope": a JSON object like `strata telemetry tail --json` prints. */
  format: z.enum(["raw", "envelope"]).default("raw"),
  /** Topic of a device's message; placeholders {deviceId} {moduleId} {outputName} {origin} {hub} {sink}. */
  topic: topicTemplate.default("strata/{deviceId}/messages"),
  /** Topic of a module's message. */
  module_topic: topicTemplate.default("strata/{deviceId}/modules/{moduleId}/messages"),
  /** 1 (delivered = the broker's PUBACK) or 2 (PUBCOMP). QoS 0 could not tell a delivered message from a lost one. */
  qos: z.union([z.literal(1), z.literal(2)]).default(1),
  retain: z.boolean().default(false),
  /**
   * Most publishes awaiting the broker's acknowledgement at once (also the batch taken from the queue); an
   * MQTT 5 broker's receive maximum lowers it (mosquitto announces its max_inflight_messages, default 20).
   */
  max_in_flight: z.int().min(1).max(65535).default(1000),
  /** How long a connection attempt may take before the batch is retried later. */
  connect_timeout_ms: z.int().min(100).default(10_000),
  /** How long publishes may wait with no acknowledgement arriving before the connection is dropped and they are retried. */
  ack_timeout_ms: z.int().min(100).default(30_000),
  keepalive_secs: z.int().min(0).max(65535).default(60),
});

export type MqttSinkConfig = z.output<typeof mqttSinkConfigSchema>;
