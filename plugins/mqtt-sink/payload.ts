import type { Message, SystemProperties } from "../../core/index.js";
import { splitIdentityId } from "../../core/index.js";

/**
 * One message as a JSON object: the shape `strata telemetry tail --json` prints (the root's
 * TelemetryRecord; kept in step by hand, plugins do not import each other), so a consumer of the broker
 * and a reader of the root's log see the same thing.
 */
export interface Envelope {
  deviceId: string;
  moduleId: string | null;
  /** ISO-8601, when the origin gateway accepted the message. */
  enqueuedTime: string;
  messageId: string | null;
  properties: Record<string, string>;
  systemProperties: Record<string, string>;
  /** The body as UTF-8 text, or base64 when it is not valid UTF-8 (then `bodyEncoding` is "base64"). */
  body: string;
  bodyEncoding?: "base64";
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The body as text when it is valid UTF-8, else base64. */
export function encodeBody(body: Buffer): { body: string; bodyEncoding?: "base64" } {
  try {
    return { body: utf8.decode(body) };
  } catch {
    return { body: body.toString("base64"), bodyEncoding: "base64" };
  }
}

function definedOnly(props: SystemProperties): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(props)) if (v !== undefined) out[k] = v;
  return out;
}

export function toEnvelope(message: Message): Envelope {
  const { deviceId, moduleId } = splitIdentityId(message.source);
  return {
    deviceId,
    moduleId: moduleId ?? null,
    enqueuedTime: new Date(message.enqueuedTime).toISOString(),
    messageId: message.systemProperties.messageId ?? null,
    properties: { ...message.properties },
    systemProperties: definedOnly(message.systemProperties),
    ...encodeBody(message.body),
  };
}

/** IoT Hub's property-bag keys (what a device sends on MQTT), reused as MQTT 5 user property names. */
const BAG_KEYS: Readonly<Record<string, string>> = {
  messageId: "$.mid",
  correlationId: "$.cid",
  userId: "$.uid",
  to: "$.to",
  expiryTimeUtc: "$.exp",
  contentType: "$.ct",
  contentEncoding: "$.ce",
  outputName: "$.on",
  inputName: "$.in",
  messageSchema: "$.schema",
  creationTimeUtc: "$.ctime",
  interfaceId: "$.ifid",
  component: "$.sub",
  connectionDeviceId: "$.cdid",
  connectionModuleId: "$.cmid",
  ack: "$.ack",
};

/** Strata's own user properties: the hierarchy-wide id (a consumer's dedup key) and the enqueue time. */
export const STRATA_ID_PROPERTY = "strata-id";
export const STRATA_ENQUEUED_PROPERTY = "strata-enqueued-time";

/**
 * The message's application properties, then its system properties under their bag keys (`$.mid`, …;
 * `$.cdid`/`$.cmid` name the sender), then Strata's id and enqueue time, as MQTT 5 user properties.
 */
export function userProperties(message: Message): Record<string, string> {
  const out: Record<string, string> = { ...message.properties };
  for (const [k, v] of Object.entries(message.systemProperties)) {
    if (v !== undefined) out[BAG_KEYS[k] ?? `$.${k}`] = v;
  }
  const { deviceId, moduleId } = splitIdentityId(message.source);
  out["$.cdid"] ??= deviceId;
  if (moduleId !== undefined) out["$.cmid"] ??= moduleId;
  out[STRATA_ID_PROPERTY] = message.id;
  out[STRATA_ENQUEUED_PROPERTY] = new Date(message.enqueuedTime).toISOString();
  return out;
}

export type PayloadFormat = "raw" | "envelope";

/** What goes on the wire for one message: payload and, on MQTT 5, publish properties. */
export interface Outgoing {
  payload: Buffer;
  properties?: { userProperties: Record<string, string>; contentType?: string };
}

export function toOutgoing(message: Message, format: PayloadFormat, protocolVersion: 4 | 5): Outgoing {
  const payload = format === "envelope" ? Buffer.from(JSON.stringify(toEnvelope(message))) : message.body;
  if (protocolVersion !== 5) return { payload };
  const contentType = format === "envelope" ? "application/json" : message.systemProperties.contentType;
  return { payload, properties: { userProperties: userProperties(message), ...(contentType ? { contentType } : {}) } };
}
