import { encodeBody, splitIdentityId, toMessageRecord, type Message, type MessageRecord } from "../../core/index.js";

/** One message as a JSON object: core's MessageRecord, the shape `strata telemetry tail --json` prints. */
export type Envelope = MessageRecord;
export { encodeBody };

export function toEnvelope(message: Message): Envelope {
  return toMessageRecord(message);
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
