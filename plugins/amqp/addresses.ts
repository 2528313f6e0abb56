/**
 * IoT Hub's AMQP link addresses (iot-hub-wire.md, AMQP). Matching is case-insensitive; an address may come
 * as a full `amqps://host[:port]/path` URL, of which only the path counts.
 */
export type LinkAddress =
  | { kind: "cbs" }
  /** Client sends telemetry; a module's client receives its inputs on the same address. */
  | { kind: "events"; deviceId: string; moduleId?: string }
  /** Client receives C2D (`/devices/{d}/messages/devicebound`). */
  | { kind: "c2d"; deviceId: string; moduleId?: string }
  | { kind: "twin"; deviceId: string; moduleId?: string }
  | { kind: "methods"; deviceId: string; moduleId?: string }
  /** Service side (root): C2D to any device. */
  | { kind: "service-c2d" }
  /** Service side (root): C2D feedback records. */
  | { kind: "service-feedback" };

export type DeviceAddress = Extract<LinkAddress, { deviceId: string }>;

const DEVICE_PATH = /^\/devices\/([^/]+)(?:\/modules\/([^/]+))?\/(messages\/events|messages\/devicebound|twin|methods\/devicebound)\/?$/i;

export function parseLinkAddress(address: string | undefined): LinkAddress | undefined {
  if (!address) return undefined;
  let path = address.trim();
  const url = /^amqps?:\/\/[^/]*(\/.*)?$/i.exec(path);
  if (url) path = url[1] ?? "/";
  if (path.toLowerCase() === "$cbs" || path.toLowerCase() === "/$cbs") return { kind: "cbs" };
  const lower = path.toLowerCase().replace(/\/$/, "");
  if (lower === "/messages/devicebound") return { kind: "service-c2d" };
  if (lower === "/messages/servicebound/feedback") return { kind: "service-feedback" };
  const m = DEVICE_PATH.exec(path);
  if (!m) return undefined;
  let deviceId: string;
  let moduleId: string | undefined;
  try {
    deviceId = decodeURIComponent(m[1]!);
    moduleId = m[2] !== undefined ? decodeURIComponent(m[2]) : undefined;
  } catch {
    return undefined;
  }
  const ids = moduleId !== undefined ? { deviceId, moduleId } : { deviceId };
  switch (m[3]!.toLowerCase()) {
    case "messages/events":
      return { kind: "events", ...ids };
    case "messages/devicebound":
      return { kind: "c2d", ...ids };
    case "twin":
      return { kind: "twin", ...ids };
    default:
      return { kind: "methods", ...ids };
  }
}

/** The device a service C2D message is for, from its `to` (`/devices/{id}/messages/devicebound`). */
export function c2dTargetOf(to: string | undefined): string | undefined {
  const parsed = parseLinkAddress(to);
  if (!parsed || parsed.kind !== "c2d") return undefined;
  return parsed.moduleId !== undefined ? `${parsed.deviceId}/${parsed.moduleId}` : parsed.deviceId;
}

/** The `com.microsoft:auth-chain` link property as ids (target first, actor last), or undefined. */
export function parseAuthChain(value: unknown): string[] | undefined {
  if (typeof value !== "string") return undefined;
  const chain = value.split(";").map((s) => s.trim()).filter((s) => s.length > 0);
  return chain.length > 0 ? chain : undefined;
}

export const AUTH_CHAIN_PROPERTY = "com.microsoft:auth-chain";
