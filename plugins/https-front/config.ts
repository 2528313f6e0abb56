import { z } from "zod";

/** Path prefixes of the root's IoT Hub service API: never reachable through `/parent/…` unless explicitly allowed. */
export const SERVICE_API_PREFIXES = ["/devices", "/twins", "/modules", "/jobs", "/configurations", "/messages", "/statistics"] as const;

/** `[plugins.https-front]`: the API proxy from this gateway's HTTPS port to its parent's. */
export const httpsFrontConfigSchema = z
  .strictObject({
    /**
     * Where `/v2/…` (registry) goes. `auto`: nowhere here when `[plugins.registry-cache]` is configured (the cache
     * owns `/v2/`), else to the parent's front. `parent` forces forwarding, `off` serves nothing.
     */
    registry: z.enum(["auto", "parent", "off"]).default("auto"),
    /**
     * Where blob requests go — those under blob_path_prefix, and those carrying `x-ms-version` on a path nothing
     * else here serves (path-style `https://gw/<account>/…`; never the service API's or `/$…` paths): `auto`
     * leaves them to a local `[plugins.blob]`, else the parent.
     */
    blob: z.enum(["auto", "parent", "off"]).default("auto"),
    /** Path prefix of blob (Azure Blob REST) requests on this port. */
    blob_path_prefix: z.string().regex(/^\/[A-Za-z0-9._~\-/]*[A-Za-z0-9._~-]$/).default("/blob"),
    /** Prefixes (after `/parent`) passed through to the parent verbatim, e.g. `/$strata/health`. Empty: none. */
    parent_paths: z.array(z.string().startsWith("/")).default([]),
    /** Allow parent_paths to reach the root's service API (off: an owner token must never travel down-up through fronts by accident). */
    allow_service_api: z.boolean().default(false),
    /** Connecting to the parent and waiting for its response headers: beyond this, 504. */
    timeout_ms: z.int().min(100).default(30_000),
  })
  .superRefine((c, ctx) => {
    if (c.allow_service_api) return;
    c.parent_paths.forEach((p, i) => {
      const clash = SERVICE_API_PREFIXES.find((s) => p === "/" || p.startsWith(s) || s.startsWith(p));
      if (clash) ctx.addIssue({ code: "custom", path: ["parent_paths", i], message: `"${p}" reaches the root's service API (${clash}); remove it or set allow_service_api = true` });
    });
  });

export type HttpsFrontConfig = z.output<typeof httpsFrontConfigSchema>;
