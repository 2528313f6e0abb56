// Shared access signatures exactly as IoT Hub and edgeHub make and check them
// (shared/reference/iot-hub-wire.md, "SAS token").
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { StrataError } from "../errors.js";
import type { SasToken } from "./types.js";

const PREFIX = "SharedAccessSignature ";
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** HMAC-SHA256 output length: a signature of any other length can never match. */
const SIG_BYTES = 32;

export type SasParse = { ok: true; token: SasToken } | { ok: false; detail: string };

/**
 * Parse without throwing (the hot path of every connect). Fields may come in any order; unknown fields are
 * ignored as IoT Hub does; `sr` and `sig` are kept exactly as sent (URL-encoded).
 */
export function tryParseSasToken(token: string): SasParse {
  if (typeof token !== "string" || !token.startsWith(PREFIX)) {
    return { ok: false, detail: `a SAS token starts with "${PREFIX.trim()}"` };
  }
  const fields = new Map<string, string>();
  for (const part of token.slice(PREFIX.length).trim().split("&")) {
    const eq = part.indexOf("=");
    if (eq <= 0) return { ok: false, detail: "each SAS field is key=value separated by &" };
    const key = part.slice(0, eq);
    if (fields.has(key)) return { ok: false, detail: `SAS field ${key} appears twice` };
    fields.set(key, part.slice(eq + 1));
  }
  const sr = fields.get("sr");
  const sig = fields.get("sig");
  const se = fields.get("se");
  for (const [name, value] of [["sr", sr], ["sig", sig], ["se", se]] as const) {
    if (!value) return { ok: false, detail: `SAS field ${name} is missing or empty` };
  }
  if (!/^\d{1,12}$/.test(se!)) return { ok: false, detail: "SAS field se must be unix seconds (digits only)" };
  const skn = fields.get("skn");
  const parsed: SasToken = { sr: sr!, sig: sig!, se: Number(se) };
  if (skn !== undefined) {
    const name = safeDecode(skn);
    if (name === undefined || name === "") return { ok: false, detail: "SAS field skn is not a valid URL-encoded name" };
    parsed.skn = name;
  }
  return { ok: true, token: parsed };
}

/** Parse `SharedAccessSignature sr=…&sig=…&se=…[&skn=…]`; throws STRATA_IDENTITY_SAS_MALFORMED. */
export function parseSasToken(token: string): SasToken {
  const r = tryParseSasToken(token);
  if (!r.ok) throw new StrataError("STRATA_IDENTITY_SAS_MALFORMED", `malformed SAS token: ${r.detail}`);
  return r.token;
}

/** The signature bytes of a token's `sig` (URL-decoded, strict base64), or undefined when it is not base64. */
export function decodeSig(sig: string): Buffer | undefined {
  const b64 = safeDecode(sig);
  if (b64 === undefined || !BASE64.test(b64)) return undefined;
  return Buffer.from(b64, "base64");
}

/** `HMAC-SHA256(base64decode(key), sr + "\n" + se)` over `sr` exactly as sent. */
export function sasSignature(srAsSent: string, se: number, key: string): Buffer {
  return createHmac("sha256", Buffer.from(key, "base64")).update(`${srAsSent}\n${se}`).digest();
}

/** Constant-time check of decoded signature bytes against each key in turn (primary, then secondary). */
export function signatureMatches(token: SasToken, sig: Buffer, keys: readonly (string | undefined)[]): boolean {
  if (sig.length !== SIG_BYTES) return false;
  let matched = false;
  for (const key of keys) {
    if (!key) continue;
    // No early exit: every key is tried so timing does not tell which one matched.
    if (timingSafeEqual(sasSignature(token.sr, token.se, key), sig)) matched = true;
  }
  return matched;
}

export interface SignSasOptions {
  /** The resource, not encoded: `{hub}/devices/{d}[/modules/{m}]`, or the hub name for a service token. */
  resource: string;
  /** Base64 key (device, module or policy key). */
  key: string;
  /** Absolute expiry, seconds since the epoch (the token's `se`): e.g. `Math.floor(Date.now() / 1000) + 3600`. */
  expirySecs: number;
  /** The policy name (`skn`), for service tokens. */
  keyName?: string;
}

/** A token as the Azure SDKs build it: `sr` and `sig` URL-encoded, fields in the order sr, sig, se, skn. */
export function signSas(opts: SignSasOptions): string {
  if (!Number.isInteger(opts.expirySecs) || opts.expirySecs < 0) {
    throw new StrataError("STRATA_IDENTITY_SAS_EXPIRY", `signSas: expirySecs must be whole unix seconds, got ${opts.expirySecs}`);
  }
  const sr = encodeURIComponent(opts.resource);
  const sig = sasSignature(sr, opts.expirySecs, opts.key).toString("base64");
  const skn = opts.keyName === undefined ? "" : `&skn=${encodeURIComponent(opts.keyName)}`;
  return `${PREFIX}sr=${sr}&sig=${encodeURIComponent(sig)}&se=${opts.expirySecs}${skn}`;
}

/** A new symmetric key: 32 random bytes, base64 (IoT Hub's key size). */
export function generateKey(): string {
  return randomBytes(32).toString("base64");
}

export interface DeviceConnectionStringOptions {
  hub: string;
  deviceId: string;
  moduleId?: string;
  key: string;
  /** The gateway the device connects to (may carry `:port`, which the Node SDK honours). */
  gatewayHostName?: string;
}

/** `HostName=…;DeviceId=…[;ModuleId=…];SharedAccessKey=…[;GatewayHostName=…]`, as the device SDKs read it. */
export function deviceConnectionString(o: DeviceConnectionStringOptions): string {
  const parts = [`HostName=${o.hub}`, `DeviceId=${o.deviceId}`];
  if (o.moduleId) parts.push(`ModuleId=${o.moduleId}`);
  parts.push(`SharedAccessKey=${o.key}`);
  if (o.gatewayHostName) parts.push(`GatewayHostName=${o.gatewayHostName}`);
  return parts.join(";");
}

/** `HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`, as the service SDK (`azure-iothub`) reads it. */
export function serviceConnectionString(o: { hub: string; policy: string; key: string }): string {
  return `HostName=${o.hub};SharedAccessKeyName=${o.policy};SharedAccessKey=${o.key}`;
}

/** The resource of a token split into its parts (decoded), or a reason it is not one. */
export type SasResource =
  | { ok: true; host: string; deviceId?: string; moduleId?: string }
  | { ok: false; detail: string };

/** `{host}`, `{host}/devices/{d}` or `{host}/devices/{d}/modules/{m}` after URL-decoding `sr`. */
export function parseResource(srAsSent: string): SasResource {
  const resource = safeDecode(srAsSent);
  if (resource === undefined) return { ok: false, detail: "SAS field sr is not valid URL encoding" };
  const parts = resource.split("/");
  const host = parts[0]!;
  if (!host) return { ok: false, detail: "SAS resource has no host" };
  if (parts.length === 1) return { ok: true, host };
  if (parts[1] === "devices" && parts[2]) {
    if (parts.length === 3) return { ok: true, host, deviceId: parts[2] };
    if (parts.length === 5 && parts[3] === "modules" && parts[4]) {
      return { ok: true, host, deviceId: parts[2], moduleId: parts[4] };
    }
  }
  return { ok: false, detail: `SAS resource must be {host}/devices/{d} or {host}/devices/{d}/modules/{m}, got "${resource}"` };
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined; // URIError: malformed %-escape; the caller reports it as a malformed field
  }
}

/**
 * The identity a device token names (`{host}/devices/{d}[/modules/{m}]`), without checking it: an AMQP CBS
 * put-token carries no client id, so the head learns who is connecting from the token, then verifies it.
 */
export function identityFromSasToken(token: string): { id: string; deviceId: string; moduleId?: string; host: string } | undefined {
  const parsed = tryParseSasToken(token);
  if (!parsed.ok) return undefined;
  const r = parseResource(parsed.token.sr);
  if (!r.ok || r.deviceId === undefined) return undefined;
  return r.moduleId === undefined
    ? { id: r.deviceId, deviceId: r.deviceId, host: r.host }
    : { id: `${r.deviceId}/${r.moduleId}`, deviceId: r.deviceId, moduleId: r.moduleId, host: r.host };
}
