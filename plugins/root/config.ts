import { z } from "zod";

const MiB = 1024 * 1024;

/** `[plugins.root.telemetry_log]`: the durable telemetry log that `strata telemetry tail` reads. */
export const telemetryLogSchema = z
  .strictObject({
  /** Register the `telemetryLog` sink; off leaves $upstream to the other sinks. */
  enabled: z.boolean().default(true),
  /** Total size the log may keep; the oldest segments go first. */
  max_bytes: z.int().min(MiB).default(1024 * MiB),
  /** Age after which a whole segment is deleted (its newest message is older than this). */
  max_age_hours: z.number().positive().default(168),
  /** A segment is closed and a new one started past this size. */
  segment_bytes: z.int().min(4096).default(16 * MiB),
  })
  .superRefine((c, ctx) => {
    // Retention deletes whole closed segments: a segment as large as the budget would leave nothing to delete.
    if (c.segment_bytes * 2 > c.max_bytes) {
      ctx.addIssue({ code: "custom", path: ["segment_bytes"], message: `must be at most half of max_bytes (${c.max_bytes}); lower segment_bytes or raise max_bytes` });
    }
  });

/** `[plugins.root]`. Defaults alone make a valid config. */
export const rootConfigSchema = z.strictObject({
  telemetry_log: telemetryLogSchema.prefault({}),
});

export type RootConfig = z.output<typeof rootConfigSchema>;
export type TelemetryLogConfig = z.output<typeof telemetryLogSchema>;
