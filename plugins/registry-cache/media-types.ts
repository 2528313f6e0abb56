/** The manifest media types a pull-through cache serves (Docker schema 2 and OCI, single and multi-arch). */
export const MANIFEST_TYPES = [
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
] as const;

/**
 * The manifest types a client's Accept admits, sorted: the key of a cached tag. One tag can resolve to
 * different bytes per Accept (an index for a multi-arch client, a single manifest for an old one), so a tag
 * entry is only reused for clients that accept the same set. No recognised type (absent, `*\/*`): all of them.
 */
export function acceptedManifestTypes(accept: string | string[] | undefined): string[] {
  const text = Array.isArray(accept) ? accept.join(",") : accept ?? "";
  const wanted = new Set<string>();
  for (const part of text.split(",")) {
    const [type, ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    if (!type) continue;
    // q=0 means "not acceptable" (RFC 9110 §12.4.2).
    if (params.some((p) => /^q=0(\.0*)?$/.test(p))) continue;
    if ((MANIFEST_TYPES as readonly string[]).includes(type)) wanted.add(type);
  }
  return wanted.size === 0 ? [...MANIFEST_TYPES].sort() : [...wanted].sort();
}

/** The media type of a manifest: its Content-Type unless generic, else its `mediaType` field. */
export function manifestMediaType(contentType: string | undefined, body: Buffer): string {
  const ct = contentType?.split(";")[0]?.trim().toLowerCase();
  if (ct && ct !== "application/json" && ct !== "text/plain" && ct !== "application/octet-stream") return ct;
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { mediaType?: unknown; manifests?: unknown };
    if (typeof parsed.mediaType === "string") return parsed.mediaType;
    return Array.isArray(parsed.manifests) ? "application/vnd.oci.image.index.v1+json" : "application/vnd.oci.image.manifest.v1+json";
  } catch {
    return ct ?? "application/octet-stream";
  }
}

/** Digests a manifest points at: config, layers, and (for an index) the per-platform manifests. */
export function manifestReferences(body: Buffer): string[] {
  try {
    const m = JSON.parse(body.toString("utf8")) as { config?: { digest?: unknown }; layers?: { digest?: unknown }[]; manifests?: { digest?: unknown }[]; blobs?: { digest?: unknown }[] };
    const out: string[] = [];
    for (const d of [m.config, ...(m.layers ?? []), ...(m.manifests ?? []), ...(m.blobs ?? [])]) {
      if (d && typeof d.digest === "string" && isDigest(d.digest)) out.push(d.digest);
    }
    return out;
  } catch {
    return [];
  }
}

/** `sha256:<64 hex>`, the only algorithm the cache verifies. */
export function isDigest(ref: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(ref);
}
