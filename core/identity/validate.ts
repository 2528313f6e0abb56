// Shape checks for records and policies entering the registry (from put, or read back from the store).
import { StrataError } from "../errors.js";
import { identityId } from "../message.js";
import type { AccessPolicy, IdentityRecord } from "./types.js";
import { normalizeThumbprint } from "./x509.js";

const BASE64_KEY = /^[A-Za-z0-9+/]+={0,2}$/;
const RIGHTS = new Set(["RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"]);

function invalid(what: string, fix: string): never {
  throw new StrataError("STRATA_IDENTITY_INVALID", `${what}: ${fix}`);
}

function checkKey(key: unknown, label: string, optional: boolean): void {
  if (optional && (key === undefined || key === "")) return;
  if (typeof key !== "string" || !BASE64_KEY.test(key) || key.length % 4 !== 0) {
    invalid(label, "must be a base64 key (generate one with generateKey())");
  }
}

/** Throws STRATA_IDENTITY_INVALID naming the field at fault. */
export function validateRecord(r: Omit<IdentityRecord, "generation" | "updatedAt">): void {
  if (!r || typeof r !== "object") invalid("identity record", "must be an object");
  const id = String(r.id);
  if (typeof r.deviceId !== "string" || !r.deviceId || r.deviceId.includes("/")) {
    invalid(`identity ${id} deviceId`, "must be a non-empty string without '/'");
  }
  if (r.moduleId !== undefined && (typeof r.moduleId !== "string" || !r.moduleId || r.moduleId.includes("/"))) {
    invalid(`identity ${id} moduleId`, "must be a non-empty string without '/' when present");
  }
  if (r.id !== identityId(r.deviceId, r.moduleId)) {
    invalid(`identity ${id} id`, `must be deviceId or deviceId/moduleId ("${identityId(r.deviceId, r.moduleId)}")`);
  }
  if (r.status !== "enabled" && r.status !== "disabled") invalid(`identity ${id} status`, 'must be "enabled" or "disabled"');
  if (typeof r.edge !== "boolean") invalid(`identity ${id} edge`, "must be true or false");
  if (r.moduleId !== undefined) {
    if (r.edge) invalid(`identity ${id} edge`, "a module cannot be an edge device; set edge on the device");
    if (r.parent !== undefined && r.parent !== r.deviceId) {
      invalid(`identity ${id} parent`, `a module's parent is its device "${r.deviceId}"; omit it or set it to that`);
    }
  } else if (r.parent !== undefined && (typeof r.parent !== "string" || !r.parent || r.parent.includes("/") || r.parent === r.id)) {
    invalid(`identity ${id} parent`, "must be the device id of an edge device (not itself, not a module)");
  }
  const auth = r.auth;
  switch (auth?.type) {
    case "sas":
      checkKey(auth.primaryKey, `identity ${id} auth.primaryKey`, false);
      checkKey(auth.secondaryKey, `identity ${id} auth.secondaryKey`, true);
      break;
    case "selfSigned":
      for (const [field, t, optional] of [
        ["primaryThumbprint", auth.primaryThumbprint, false],
        ["secondaryThumbprint", auth.secondaryThumbprint, true],
      ] as const) {
        if (optional && (t === undefined || t === "")) continue;
        const hex = typeof t === "string" ? normalizeThumbprint(t) : "";
        if (!/^[0-9a-f]+$/.test(hex) || (hex.length !== 40 && hex.length !== 64)) {
          invalid(`identity ${id} auth.${field}`, "must be a SHA-1 (40 hex) or SHA-256 (64 hex) thumbprint");
        }
      }
      break;
    case "certificateAuthority":
      break;
    default:
      invalid(`identity ${id} auth.type`, 'must be "sas", "selfSigned" or "certificateAuthority"');
  }
}

export function validatePolicy(p: AccessPolicy): void {
  if (!p || typeof p !== "object" || typeof p.name !== "string" || !p.name) {
    invalid("access policy name", "must be a non-empty string (e.g. iothubowner)");
  }
  checkKey(p.primaryKey, `access policy ${p.name} primaryKey`, false);
  checkKey(p.secondaryKey, `access policy ${p.name} secondaryKey`, true);
  if (!Array.isArray(p.rights) || p.rights.some((r) => !RIGHTS.has(r))) {
    invalid(`access policy ${p.name} rights`, `must list only ${[...RIGHTS].join(", ")}`);
  }
}
