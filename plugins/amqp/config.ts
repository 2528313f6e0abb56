import { z } from "zod";

/**
 * `[plugins.amqp]`. The port and address live in `[listen]` (`amqp`, `address`) with every other port.
 * Defaults alone make a valid config.
 */
export const amqpConfigSchema = z.strictObject({
  /** Largest message a client may send; IoT Hub's AMQP limit is 1 MiB. */
  max_message_bytes: z.int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Serve AMQP over TLS on `[listen] amqp`. */
  tls: z.boolean().default(true),
  /** Serve AMQP over WebSocket on the HTTPS listener (`/$iothub/websocket`, subprotocol `AMQPWSB10`). */
  websocket: z.boolean().default(true),
  /** Credit each receiving link starts with; one more is granted per message once the store has it. */
  link_credit: z.int().min(1).max(10_000).default(100),
  /**
   * Credit of a child gateway's telemetry links (messages it forwards for its identities). A child sends only
   * what its drain leased, so this does not let it push more; it lets the child's pipelined batches arrive in
   * the order the child leased them — one busy leaf must not outrun a sibling child's share on credit alone.
   */
  gateway_link_credit: z.int().min(1).max(100_000).default(2000),
  /** Back-off bounds while the store is at its quota and a message waits to become durable (no credit meanwhile). */
  quota_retry_min_ms: z.int().min(1).default(100),
  quota_retry_max_ms: z.int().min(1).default(5_000),
  /** How long the feedback drain waits for a service client's feedback receiver before it retries later. */
  feedback_wait_ms: z.int().min(0).max(60_000).default(1_000),
  /** Records per feedback message (IoT Hub batches feedback records into one JSON array). */
  feedback_batch: z.int().min(1).max(500).default(64),
});

export type AmqpConfig = z.output<typeof amqpConfigSchema>;
