import { identityId, type Hub, type InboundMessage, type SystemProperties } from "../../../core/index.js";
import { badRequest, ServiceError } from "./errors.js";
import { isObject, type JsonObject } from "./json.js";
import type { DeviceRegistry } from "./registry.js";

/** IoT Hub's limits for a direct method's response timeout (seconds); Strata also admits 1–4 s for tests. */
const MAX_METHOD_TIMEOUT_SECS = 300;
const DEFAULT_METHOD_TIMEOUT_SECS = 30;
/** IoT Hub's limit for a cloud-to-device message. */
export const MAX_C2D_BYTES = 64 * 1024;

/** Codes Strata's hub puts in the payload of the 404/504 results it makes itself (not the device's). */
const NOT_ONLINE = 404103;
const TIMED_OUT = 504101;

export class MethodService {
  constructor(
    private readonly hub: Hub,
    private readonly registry: DeviceRegistry,
  ) {}

  /** `{methodName, payload, responseTimeoutInSeconds}` → `{status, payload}`; 404 offline, 504 no answer. */
  async invoke(deviceId: string, moduleId: string | undefined, body: JsonObject): Promise<JsonObject> {
    const methodName = body["methodName"];
    if (typeof methodName !== "string" || methodName.trim() === "") {
      throw badRequest("methodName", "is required: the name of the method the device registered");
    }
    const rawTimeout = body["responseTimeoutInSeconds"];
    let timeout = DEFAULT_METHOD_TIMEOUT_SECS;
    if (rawTimeout !== undefined && rawTimeout !== null) {
      if (typeof rawTimeout !== "number" || !Number.isInteger(rawTimeout) || rawTimeout < 1 || rawTimeout > MAX_METHOD_TIMEOUT_SECS) {
        throw badRequest("responseTimeoutInSeconds", `must be a whole number of seconds from 1 to ${MAX_METHOD_TIMEOUT_SECS}`);
      }
      timeout = rawTimeout;
    }
    const record = this.registry.require(deviceId, moduleId);
    if (!this.hub.isConnected(record.id)) throw notOnline(record.id);
    const result = await this.hub.invokeMethod(record.id, {
      methodName,
      payload: body["payload"] ?? null,
      responseTimeoutInSeconds: timeout,
    });
    const code = isObject(result.payload) ? result.payload["errorCode"] : undefined;
    if (result.status === 404 && code === NOT_ONLINE) throw notOnline(record.id);
    if (result.status === 504 && code === TIMED_OUT) {
      throw new ServiceError(504, "GatewayTimeout", `${record.id} did not answer method ${methodName} within ${timeout} s`);
    }
    return { status: result.status, payload: result.payload ?? null };
  }
}

function notOnline(id: string): ServiceError {
  return new ServiceError(404, "DeviceNotOnline",
    `${id} is not connected or has not subscribed to direct methods; connect it and register the method first`);
}

/** Header names of the C2D convenience endpoint, as IoT Hub's HTTPS API spells system properties. */
const SYSTEM_HEADERS: Record<string, keyof SystemProperties> = {
  "iothub-messageid": "messageId",
  "iothub-correlationid": "correlationId",
  "iothub-userid": "userId",
  "iothub-to": "to",
  "iothub-expiry": "expiryTimeUtc",
  "iothub-ack": "ack",
  "content-type": "contentType",
  "content-encoding": "contentEncoding",
};
const APP_PREFIX = "iothub-app-";

/** `POST /devices/{id}/messages/deviceBound`: the body is the message; `iothub-app-*` headers its properties. */
export function c2dFromRequest(headers: Record<string, string | string[] | undefined>, body: Buffer | undefined): InboundMessage {
  const bytes = body ?? Buffer.alloc(0);
  if (bytes.length > MAX_C2D_BYTES) {
    throw new ServiceError(413, "MessageTooLarge", `the message body is ${bytes.length} bytes; a cloud-to-device message may have at most ${MAX_C2D_BYTES}`);
  }
  const systemProperties: SystemProperties = {};
  const properties: Record<string, string> = {};
  for (const [name, raw] of Object.entries(headers)) {
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    const sys = SYSTEM_HEADERS[lower];
    if (sys) systemProperties[sys] = value;
    else if (lower.startsWith(APP_PREFIX) && lower.length > APP_PREFIX.length) properties[name.slice(APP_PREFIX.length)] = value;
  }
  if (systemProperties.expiryTimeUtc !== undefined && !Number.isFinite(Date.parse(systemProperties.expiryTimeUtc))) {
    throw badRequest("iothub-expiry", `"${systemProperties.expiryTimeUtc}" is not an ISO-8601 time`);
  }
  return { body: bytes, properties, systemProperties };
}

export async function sendC2D(hub: Hub, registry: DeviceRegistry, deviceId: string, message: InboundMessage): Promise<{ id: string }> {
  const record = registry.require(deviceId);
  return hub.sendC2D(identityId(record.deviceId), message);
}
