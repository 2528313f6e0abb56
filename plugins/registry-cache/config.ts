import { z } from "zod";

/** `[plugins.registry-cache.upstreams.NAME]`: one upstream registry. */
export const upstreamSchema = z.strictObject({
  /** Base URL of the registry, e.g. `https://registry-1.docker.io`. `http://` only for a registry on a trusted link. */
  url: z.url({ protocol: /^https?$/ }),
  /**
   * Repository names starting with this prefix go to this upstream (`docker.io/` → `docker.io/library/x` is
   * `library/x` upstream when strip_prefix). An empty prefix makes it the default upstream (at most one).
   */
  prefix: z.string().default(""),
  strip_prefix: z.boolean().default(true),
  /** Upstream credentials (basic, or exchanged for a bearer token at the upstream's realm). */
  username: z.string().min(1).optional(),
  /** File holding the upstream password (mode 0600). */
  password_file: z.string().min(1).optional(),
  /** Authenticate as this gateway (its device id and a fresh SAS token): for a parent Strata gateway. */
  gateway_auth: z.boolean().default(false),
  /** PEM file of CAs trusted for this upstream instead of node's bundle. */
  ca_file: z.string().min(1).optional(),
  /** TLS server name when `url` names an address. */
  servername: z.string().min(1).optional(),
});

/** `[plugins.registry-cache.pull_users]`: a user allowed to pull (besides gateway and module identities). */
export const pullUserSchema = z.strictObject({
  username: z.string().min(1),
  password_file: z.string().min(1),
});

/** `[plugins.registry-cache]`: the OCI pull-through cache mounted at `/v2/` on the gateway's HTTPS port. */
export const registryCacheConfigSchema = z
  .strictObject({
    upstreams: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/), upstreamSchema).default({}),
    /**
     * On a child gateway with no default upstream (no upstream with an empty prefix), pull through the
     * parent's front, authenticating as this gateway. Lets a lower layer cache too.
     */
    parent_upstream: z.boolean().default(true),
    /** Pulls without credentials. Off by default: a pull needs a pull user or a gateway/module SAS token. */
    anonymous: z.boolean().default(false),
    pull_users: z.array(pullUserSchema).default([]),
    /** Disk quota of cached blobs and manifests; the least recently used unreferenced ones go first. */
    quota_bytes: z.int().min(1024 * 1024).default(20 * 1024 ** 3),
    /** Largest manifest accepted from upstream. */
    max_manifest_bytes: z.int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
    /** An upstream request that sends nothing for this long fails (and a cached tag is served instead). */
    upstream_timeout_ms: z.int().min(100).default(30_000),
  })
  .superRefine((c, ctx) => {
    const defaults = Object.entries(c.upstreams).filter(([, u]) => u.prefix === "");
    if (defaults.length > 1) {
      ctx.addIssue({ code: "custom", path: ["upstreams", defaults[1]![0], "prefix"], message: `only one upstream may be the default (empty prefix); ${defaults.map(([n]) => n).join(" and ")} both are` });
    }
    for (const [name, u] of Object.entries(c.upstreams)) {
      if ((u.username === undefined) !== (u.password_file === undefined)) {
        ctx.addIssue({ code: "custom", path: ["upstreams", name, "password_file"], message: "username and password_file go together: set both or neither" });
      }
      if (u.username !== undefined && u.gateway_auth) {
        ctx.addIssue({ code: "custom", path: ["upstreams", name, "gateway_auth"], message: "gateway_auth replaces username/password_file: set one or the other" });
      }
    }
  });

export type RegistryCacheConfig = z.output<typeof registryCacheConfigSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
