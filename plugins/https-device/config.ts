import { z } from "zod";
import { translationSettings } from "../../core/index.js";

/** `[plugins.https-device]`. Devices authenticate with their own SAS, so their identities exist: auto_create is off by default. */
export const httpsDeviceConfigSchema = z.strictObject({
  ...translationSettings("identity"),
  auto_create: z.boolean().default(false),
  /** Seconds a received C2D message stays locked for its device (IoT Hub: 60) before another GET may take it. */
  lock_timeout_secs: z.number().int().min(1).max(3600).default(60),
  /** Largest request body (IoT Hub: 256 KiB per message). */
  max_body_bytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(256 * 1024),
});
export type HttpsDeviceConfig = z.output<typeof httpsDeviceConfigSchema>;
