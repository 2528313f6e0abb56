import { z } from "zod";

/**
 * `[plugins.metrics]`. Defaults alone make a valid config.
 * `access` guards `/metrics`, `/status` and the tree API: Prometheus sends no SAS token, so the default only
 * answers peers on the loopback network (a scraper on the box, or an SSH tunnel); `token` wants
 * `Authorization: Bearer <token_file content>`; `owner` wants an `iothubowner` SAS token (root only).
 * An owner SAS token is accepted in every mode (the `strata tree` CLI uses it).
 */
export const metricsConfigSchema = z
  .strictObject({
    access: z.enum(["local", "token", "owner"]).default("local"),
    /** A file (mode 0600) holding the bearer token for `access = "token"`. */
    token_file: z.string().min(1).optional(),
    /** How often this gateway sends its state upward (a child) or refreshes its own row (the root). */
    report_interval_secs: z.number().positive().max(3600).default(30),
    /** How often the gateway runs `strata check` on itself for `strata check --tree`. */
    check_interval_secs: z.number().positive().max(86_400).default(300),
  })
  .superRefine((c, ctx) => {
    if (c.access === "token" && !c.token_file) {
      ctx.addIssue({ code: "custom", path: ["token_file"], message: `is required when access = "token"; point it at a file (mode 0600) holding the bearer token` });
    }
  });

export type MetricsConfig = z.output<typeof metricsConfigSchema>;
