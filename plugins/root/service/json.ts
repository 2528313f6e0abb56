import { badRequest } from "./errors.js";

/** Small helpers for reading untrusted JSON bodies with errors that name the field at fault. */

export type JsonObject = Record<string, unknown>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses a request body as a JSON object; `what` names the body in errors. */
export function parseJsonObject(body: Buffer | undefined, what: string, required = true): JsonObject {
  if (!body || body.length === 0) {
    if (required) throw badRequest(what, "is missing: send a JSON object with Content-Type: application/json");
    return {};
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw badRequest(what, `is not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(value)) throw badRequest(what, "must be a JSON object");
  return value;
}

export function optionalObject(obj: JsonObject, key: string, field: string): JsonObject | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw badRequest(field, "must be a JSON object");
  return v;
}

export function optionalString(obj: JsonObject, key: string, field: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw badRequest(field, "must be a string");
  return v;
}
