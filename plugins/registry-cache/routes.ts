/** A parsed `/v2/…` request path. */
export type RegistryPath =
  | { kind: "base" }
  | { kind: "manifest"; name: string; reference: string }
  | { kind: "blob"; name: string; digest: string }
  | { kind: "other"; name?: string };

// OCI distribution spec: name components `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` separated by "/".
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Parses the path of a request under `/v2`; query strings are ignored. */
export function parseRegistryPath(url: string): RegistryPath {
  const path = url.split("?")[0]!;
  if (path === "/v2" || path === "/v2/") return { kind: "base" };
  const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path);
  if (!m) return { kind: "other" };
  const name = decodeURIComponent(m[1]!);
  const ref = decodeURIComponent(m[3]!);
  if (!NAME.test(name)) return { kind: "other" };
  if (m[2] === "blobs") return /^sha256:[0-9a-f]{64}$/.test(ref) ? { kind: "blob", name, digest: ref } : { kind: "other", name };
  if (/^[a-z0-9]+:[0-9a-f]{32,}$/.test(ref) || TAG.test(ref)) return { kind: "manifest", name, reference: ref };
  return { kind: "other", name };
}

/** The `ns` query parameter containerd sends (the registry host the image name came from). */
export function namespaceParam(url: string): string | undefined {
  const q = url.indexOf("?");
  if (q === -1) return undefined;
  return new URLSearchParams(url.slice(q + 1)).get("ns") ?? undefined;
}

/** A single `Range: bytes=…` against a blob of `size` bytes; undefined for none or a form not served (multi-range). */
export type RangeRequest = { start: number; end: number } | "unsatisfiable" | undefined;

export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "unsatisfiable";
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== "" && Number(m[2]) < start) return undefined;
  }
  if (start >= size) return "unsatisfiable";
  return { start, end };
}
