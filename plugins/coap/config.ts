import { z } from "zod";
import { translationSettings } from "../../core/index.js";

/** `[plugins.coap]`. */
export const coapConfigSchema = z.strictObject({
  ...translationSettings("protocol"),
  /** UDP port of the CoAP server (on `[listen] address`); 5683 is CoAP's registered port. */
  port: z.number().int().min(0).max(65535).default(5683),
  /** Largest request payload taken (after block-wise reassembly); a larger one is answered 4.13. */
  max_payload_bytes: z.number().int().min(64).max(1024 * 1024).default(16 * 1024),
  /** Requests being worked on at once; beyond it the server answers 5.03 with Max-Age (UDP has no other back-pressure). */
  max_inflight: z.number().int().min(1).max(100_000).default(256),
  /** Commands kept per device that has no observer, until its next POST or GET /commands fetches them. */
  max_queued_commands: z.number().int().min(1).max(10_000).default(16),
  /** How long a command (desired value, C2D) waits to be fetched or notified before it counts as undelivered. */
  command_timeout_ms: z.number().int().min(100).max(3_600_000).default(30_000),
  /** How long a direct method waits for the device's answer (the hub's own timeout also applies). */
  method_timeout_ms: z.number().int().min(100).max(3_600_000).default(30_000),
});
export type CoapConfig = z.output<typeof coapConfigSchema>;
