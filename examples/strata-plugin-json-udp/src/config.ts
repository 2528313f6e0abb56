import { translationSettings } from "strata";
import { z } from "zod";

/** `[plugins.json-udp]`: the shared translation keys (mode, auto_create, quota_retry_ms) plus our own. */
export const jsonUdpConfigSchema = z.strictObject({
  ...translationSettings("protocol"),
  /** UDP port on the gateway's `[listen] address`. */
  port: z.number().int().min(0).max(65535).default(8095),
  /** Answer each datagram with `ok` once durable, or `error <code>` when refused. */
  ack: z.boolean().default(true),
  /** How long a direct method waits for the device's answer datagram. */
  method_timeout_ms: z.number().int().min(100).default(10_000),
});
export type JsonUdpConfig = z.output<typeof jsonUdpConfigSchema>;
