import { z } from "zod";
import { translationSettings } from "../../core/index.js";

const port = z.number().int().min(0).max(65535);

/** `[plugins.line-protocol]`. */
export const lineProtocolConfigSchema = z.strictObject({
  ...translationSettings("protocol"),
  /** TCP listener (on `[listen] address`); false turns it off. */
  tcp: z.boolean().default(true),
  tcp_port: port.default(8094),
  /** UDP listener; false turns it off. */
  udp: z.boolean().default(true),
  udp_port: port.default(8094),
  /** The JSON field that names the device. */
  device_id_field: z.string().min(1).default("deviceId"),
  /** CSV lines are `deviceId,v1,v2,…`; these name v1, v2, … (numbers are sent as numbers). */
  csv_columns: z.array(z.string().min(1)).min(1).default(["value"]),
  /** Answer each line with `ok` once it is durable, or `error <code>` when refused (TCP: a line; UDP: a datagram). */
  ack: z.boolean().default(false),
  /** Longest line accepted; a longer one is refused and the rest of it skipped. */
  max_line_bytes: z.number().int().min(64).max(1024 * 1024).default(64 * 1024),
  max_connections: z.number().int().min(1).default(1000),
  /** Lines buffered per TCP connection before it stops reading (back-pressure). */
  max_pending_lines: z.number().int().min(1).default(256),
  /** How long a direct method waits for the device's answer line (the hub's own timeout also applies). */
  method_timeout_ms: z.number().int().min(100).default(30_000),
});
export type LineProtocolConfig = z.output<typeof lineProtocolConfigSchema>;
