// The CoAP resources the plugin serves, parsed from a request's URI and method. Pure, so the routing is
// testable without a socket.

export type CoapRoute =
  | { kind: "telemetry"; deviceId: string; query: Record<string, string> }
  | { kind: "twin"; deviceId: string }
  | { kind: "commands"; deviceId: string }
  | { kind: "answer"; deviceId: string; rid: number }
  | { kind: "not-found"; detail: string }
  | { kind: "method-not-allowed"; detail: string };

/**
 * `POST /telemetry/{id}[?k=v…]` telemetry · `GET /twin/{id}` desired properties · `GET /commands/{id}`
 * (observe, or poll) commands · `POST /commands/{id}/{rid}` a method's answer.
 */
export function routeOf(method: string | null, url: string): CoapRoute {
  let parsed: URL;
  try {
    parsed = new URL(url, "coap://device");
  } catch {
    return { kind: "not-found", detail: `unparsable URI ${url}` };
  }
  let segments: string[];
  try {
    segments = parsed.pathname.split("/").filter((s) => s !== "").map((s) => decodeURIComponent(s));
  } catch {
    return { kind: "not-found", detail: `bad percent-encoding in ${parsed.pathname}` };
  }
  const [resource, deviceId, rid, ...rest] = segments;
  const allow = (want: string): CoapRoute | undefined =>
    method === want ? undefined : { kind: "method-not-allowed", detail: `${parsed.pathname} takes ${want}, not ${method ?? "this code"}` };
  if (deviceId === undefined || rest.length > 0) return { kind: "not-found", detail: usage(parsed.pathname) };
  if (resource === "telemetry" && rid === undefined) {
    return allow("POST") ?? { kind: "telemetry", deviceId, query: Object.fromEntries(parsed.searchParams) };
  }
  if (resource === "twin" && rid === undefined) return allow("GET") ?? { kind: "twin", deviceId };
  if (resource === "commands" && rid === undefined) return allow("GET") ?? { kind: "commands", deviceId };
  if (resource === "commands" && rid !== undefined) {
    const n = Number(rid);
    if (!Number.isInteger(n) || n < 1) return { kind: "not-found", detail: `method answer ${rid} is not a request id` };
    return allow("POST") ?? { kind: "answer", deviceId, rid: n };
  }
  return { kind: "not-found", detail: usage(parsed.pathname) };
}

function usage(path: string): string {
  return `no resource ${path}; use POST /telemetry/{id}, GET /twin/{id}, GET /commands/{id} (observe or poll), POST /commands/{id}/{rid}`;
}

/** A device's answer body `{"status":200,"payload":…}`; a body without a numeric status is the payload of a 200. */
export function parseAnswer(payload: Buffer): { status: number; payload: unknown } {
  const text = payload.toString("utf8").trim();
  if (text === "") return { status: 200, payload: null };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { status: 200, payload: text };
  }
  if (v && typeof v === "object" && !Array.isArray(v) && typeof (v as { status?: unknown }).status === "number") {
    const a = v as { status: number; payload?: unknown };
    return { status: a.status, payload: a.payload ?? null };
  }
  return { status: 200, payload: v };
}
