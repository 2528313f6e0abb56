import { splitIdentityId, type Message } from "./message.js";

/**
 * One message as a JSON object: what `strata telemetry tail --json` prints and what the MQTT sink's envelope
 * carries, so a reader of the root's log and a consumer of a broker see the same thing.
 */
export interface MessageRecord {
  deviceId: string;
  moduleId: string | null;
  /** ISO-8601, when the origin gateway accepted the message. */
  enqueuedTime: string;
  messageId: string | null;
  properties: Record<string, string>;
  systemProperties: Record<string, string>;
  /** utf-8 text, or base64 when `bodyEncoding` is "base64" (the body was not valid utf-8). */
  body: string;
  bodyEncoding?: "base64";
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The body as text when it is valid UTF-8, else base64 (lossless either way). */
export function encodeBody(body: Uint8Array): { body: string; bodyEncoding?: "base64" } {
  try {
    return { body: utf8.decode(body) };
  } catch {
    return { body: Buffer.from(body).toString("base64"), bodyEncoding: "base64" };
  }
}

export function toMessageRecord(message: Message): MessageRecord {
  const { deviceId, moduleId } = splitIdentityId(message.source);
  const systemProperties: Record<string, string> = {};
  for (const [k, v] of Object.entries(message.systemProperties)) if (v !== undefined) systemProperties[k] = v;
  return {
    deviceId,
    moduleId: moduleId ?? null,
    enqueuedTime: new Date(message.enqueuedTime).toISOString(),
    messageId: message.systemProperties.messageId ?? null,
    properties: { ...message.properties },
    systemProperties,
    ...encodeBody(message.body),
  };
}
