import { z } from "zod";

/** `[plugins.agent]`. Defaults alone make a valid config. */
export const agentConfigSchema = z.strictObject({
  /** Folder of the per-module workload sockets; default `<data_dir>/plugins/agent/workload`. Keep it short (unix socket paths ≤ 107 bytes). */
  workload_dir: z.string().min(1).optional(),
  /** Lines of stdout/stderr kept per module (GetModuleLogs). */
  log_lines: z.int().min(10).max(100_000).default(1000),
  /** First restart delay; doubles per restart up to backoff_max_ms. */
  backoff_min_ms: z.int().min(0).default(1000),
  backoff_max_ms: z.int().min(1).default(300_000),
  /** A module up this long has its restart count and backoff reset (IoT Edge: 10 minutes). */
  reset_after_ms: z.int().min(1).default(600_000),
  /** SIGTERM, then SIGKILL after this long (container: the stop timeout). */
  stop_grace_ms: z.int().min(0).default(10_000),
  /** How often container health is read. */
  health_interval_ms: z.int().min(100).default(10_000),
  /** Gateway environment variables passed to process modules (nothing else leaks in). */
  inherit_env: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/)).default(["PATH", "HOME", "LANG", "TZ", "NODE_PATH"]),
  /** `IOTEDGE_GATEWAYHOSTNAME` for modules; default the gateway's `hostname`. */
  gateway_hostname: z.string().min(1).optional(),
  container: z.strictObject({
    /** Run `type: "docker"` modules through the Docker Engine API (dockerd, podman's compatible service). */
    enabled: z.boolean().default(false),
    /** The engine's unix socket. */
    socket: z.string().min(1).default("/var/run/docker.sock"),
    /** Docker Engine API version in request paths. */
    api_version: z.string().regex(/^1\.\d+$/).default("1.41"),
    /** Registry host images are pulled through (this gateway's front, which the registry cache serves); empty: pull as written. */
    pull_through: z.string().default(""),
  }).prefault({}),
}).superRefine((c, ctx) => {
  if (c.backoff_max_ms < c.backoff_min_ms) ctx.addIssue({ code: "custom", path: ["backoff_max_ms"], message: "must be >= backoff_min_ms" });
});

export type AgentConfig = z.output<typeof agentConfigSchema>;
