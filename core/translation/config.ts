import { z } from "zod";

/**
 * The keys every translation plugin's `[plugins.NAME]` section shares; a plugin spreads them into its own
 * schema: `z.strictObject({ ...translationSettings("protocol"), port: … })`.
 */
export function translationSettings(defaultMode: "protocol" | "identity") {
  return {
    /** `protocol`: everything under the gateway's identity with a `deviceId` property; `identity`: one identity per device. */
    mode: z.enum(["protocol", "identity"]).default(defaultMode),
    /** Identity mode: create an identity on a device's first message (root only); off: devices must be registered first. */
    auto_create: z.boolean().default(true),
    /** Milliseconds between retries while the store is over quota (the source is held back meanwhile). */
    quota_retry_ms: z.number().int().min(10).max(60_000).default(500),
  };
}

export interface TranslationSettings {
  mode: "protocol" | "identity";
  auto_create: boolean;
  quota_retry_ms: number;
}
