import { z } from "zod";

/**
 * `[plugins.mqtt]`. The port and address are not here: they live in `[listen]` (`mqtt`, `address`) so an
 * operator sees every port in one place. Defaults alone make a valid config.
 */
export const mqttConfigSchema = z.strictObject({
  /** Largest PUBLISH (topic + payload) a device may send; IoT Hub's limit is 256 KiB. */
  max_message_bytes: z.int().min(1024).max(16 * 1024 * 1024).default(256 * 1024),
  /** Serve MQTT over WebSocket on the HTTPS listener (`/$iothub/websocket`, subprotocol `mqtt`). */
  websocket: z.boolean().default(true),
  /** Serve MQTT over TLS on `[listen] mqtt`. */
  tls: z.boolean().default(true),
  /** How long a new connection may take to send CONNECT before it is dropped. */
  connect_timeout_ms: z.int().min(100).max(300_000).default(30_000),
  /** Back-off bounds while the store is at its quota and a PUBLISH waits to become durable. */
  quota_retry_min_ms: z.int().min(1).default(100),
  quota_retry_max_ms: z.int().min(1).default(5_000),
});

export type MqttConfig = z.output<typeof mqttConfigSchema>;
