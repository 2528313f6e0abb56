import type { Message } from "../../../core/index.js";

/**
 * One line of the telemetry log, and exactly what `strata telemetry tail --json` prints: the log is written
 * in its output shape so the command can stream lines without re-encoding them.
 */
export interface TelemetryRecord {
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

export function toTelemetryRecord(message: Message): TelemetryRecord {
  const slash = message.source.indexOf("/");
  const systemProperties: Record<string, string> = {};
  for (const [k, v] of Object.entries(message.systemProperties)) if (v !== undefined) systemProperties[k] = v;
  const record: TelemetryRecord = {
    deviceId: slash < 0 ? message.source : message.source.slice(0, slash),
    moduleId: slash < 0 ? null : message.source.slice(slash + 1),
    enqueuedTime: new Date(message.enqueuedTime).toISOString(),
    messageId: message.systemProperties.messageId ?? null,
    properties: { ...message.properties },
    systemProperties,
    body: "",
  };
  try {
    record.body = utf8.decode(message.body);
  } catch {
    // Not valid utf-8 (a binary payload): keep it lossless.
    record.body = Buffer.from(message.body).toString("base64");
    record.bodyEncoding = "base64";
  }
  return record;
}
