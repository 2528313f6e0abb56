import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

/** What Shared Key signs of one request (https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key). */
export interface SignableRequest {
  method: string;
  /** Raw path as sent (percent-encoding kept), without the query. */
  path: string;
  /** Raw query string without "?" ("" when none). */
  query: string;
  /** Header names lower case. */
  headers: Record<string, string | undefined>;
}

/** Standard headers in the 2015-02-21+ string-to-sign order. */
const STANDARD = ["content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
  "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range"] as const;

function standardValue(req: SignableRequest, name: string): string {
  const v = req.headers[name] ?? "";
  return name === "content-length" && v === "0" ? "" : v;
}

/** `x-ms-*` headers, `name:value\n` each, names sorted by `compare`. */
function canonicalHeaders(req: SignableRequest, compare: (a: string, b: string) => number): string {
  const names = Object.keys(req.headers).filter((n) => n.startsWith("x-ms-") && req.headers[n] !== undefined).sort(compare);
  return names.map((n) => `${n}:${(req.headers[n] ?? "").trimStart()}\n`).join("");
}

/** `/account/path` plus `\nname:value` per query parameter, names lower case and sorted, values decoded. */
export function canonicalResource(account: string, req: Pick<SignableRequest, "path" | "query">): string {
  let out = `/${account}${req.path || "/"}`;
  const params = new Map<string, string[]>();
  for (const part of req.query.split("&")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = safeDecode(part.slice(0, eq)).toLowerCase();
    const list = params.get(name) ?? [];
    list.push(safeDecode(part.slice(eq + 1)));
    params.set(name, list);
  }
  for (const name of [...params.keys()].sort()) out += `\n${name}:${params.get(name)!.sort().join(",")}`;
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, "%20"));
  } catch {
    return s;
  }
}

const ordinal = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
/** The service's collation ignores "-" at the first level (the SDK ports it as SharedKeyComparator). */
const hyphenless = (a: string, b: string): number => ordinal(a.replace(/-/g, ""), b.replace(/-/g, "")) || ordinal(a, b);

/** Every string-to-sign a well-behaved client may have produced for this request (orderings clients differ on). */
export function stringsToSign(account: string, req: SignableRequest): string[] {
  const resource = canonicalResource(account, req);
  const standard = STANDARD.map((h) => standardValue(req, h));
  // @azure/storage-blob swaps Content-Encoding and Content-Language; accept both when they differ.
  const swapped = [standard[1], standard[0], ...standard.slice(2)];
  const out = new Set<string>();
  for (const std of standard[0] === standard[1] ? [standard] : [standard, swapped]) {
    for (const cmp of [ordinal, hyphenless]) out.add(`${req.method.toUpperCase()}\n${std.join("\n")}\n${canonicalHeaders(req, cmp)}${resource}`);
  }
  return [...out];
}

export function hmac(keyBase64: string, text: string): string {
  return createHmac("sha256", Buffer.from(keyBase64, "base64")).update(text, "utf8").digest("base64");
}

/** The `Authorization` value for an outbound request: `SharedKey account:signature`. */
export function signRequest(account: string, keyBase64: string, req: SignableRequest): string {
  const resource = canonicalResource(account, req);
  const std = STANDARD.map((h) => standardValue(req, h)).join("\n");
  return `SharedKey ${account}:${hmac(keyBase64, `${req.method.toUpperCase()}\n${std}\n${canonicalHeaders(req, ordinal)}${resource}`)}`;
}

export type SharedKeyVerdict = { ok: true; signature: string } | { ok: false; reason: string };

/** Checks `Authorization: SharedKey account:sig` against `keyBase64`; constant-time per candidate. */
export function verifySharedKey(account: string, keyBase64: string, req: SignableRequest): SharedKeyVerdict {
  const auth = req.headers["authorization"];
  if (!auth) return { ok: false, reason: "no Authorization header (unsigned request)" };
  const m = /^SharedKey ([^:\s]+):(\S+)$/.exec(auth.trim());
  if (!m) return { ok: false, reason: "Authorization is not `SharedKey account:signature`" };
  if (m[1] !== account) return { ok: false, reason: `signed for account ${m[1]}, this is ${account}` };
  const given = Buffer.from(m[2]!, "base64");
  for (const text of stringsToSign(account, req)) {
    const expected = Buffer.from(hmac(keyBase64, text), "base64");
    if (expected.length === given.length && timingSafeEqual(expected, given)) return { ok: true, signature: m[2]! };
  }
  return { ok: false, reason: "signature does not match (wrong key, or the request was altered)" };
}

/** Lower-cased single-valued view of node's request headers. */
export function flatHeaders(h: IncomingHttpHeaders): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(h)) out[k] = Array.isArray(v) ? v.join(",") : v;
  return out;
}

/**
 * Refuses a signature seen before while its x-ms-date is still inside the clock-skew window: a captured request
 * cannot be played again. Honest clients never repeat one (a fresh x-ms-client-request-id is signed each time).
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();
  constructor(private readonly windowMs: number) {}

  /** False when `signature` was already used; records it otherwise. */
  firstUse(signature: string, now = Date.now()): boolean {
    if (this.seen.size > 10_000) this.prune(now);
    const until = this.seen.get(signature);
    if (until !== undefined && until > now) return false;
    this.seen.set(signature, now + 2 * this.windowMs);
    return true;
  }

  private prune(now: number): void {
    for (const [sig, until] of this.seen) if (until <= now) this.seen.delete(sig);
  }
}
