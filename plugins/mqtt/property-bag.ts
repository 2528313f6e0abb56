import { StrataError, type InboundMessage, type Message, type SystemProperties } from "../../core/index.js";

/**
 * IoT Hub's MQTT property bag: the URL-encoded `k=v&k2=v2` at the end of a telemetry, C2D or module-input
 * topic. Keys starting `$.` are system properties; everything else is an application property.
 */

/** Inbound system keys (device → hub) and the SystemProperties field each fills. */
const INBOUND_SYSTEM_KEYS: Readonly<Record<string, keyof SystemProperties>> = {
  "$.mid": "messageId",
  "$.cid": "correlationId",
  "$.uid": "userId",
  "$.to": "to",
  "$.exp": "expiryTimeUtc",
  "$.ct": "contentType",
  "$.ce": "contentEncoding",
  "$.on": "outputName",
  "$.schema": "messageSchema",
  "$.ctime": "creationTimeUtc",
  "$.ifid": "interfaceId",
  "$.sub": "component",
};

/**
 * Keys a device may not set: the hub stamps who sent a message (`$.cdid`/`$.cmid` are outbound only), so
 * taking them from the device would let it impersonate another.
 */
const INBOUND_IGNORED_KEYS = new Set(["$.cdid", "$.cmid"]);

/** Outbound (hub → device) system keys in the order they are written. */
const OUTBOUND_SYSTEM_KEYS: ReadonlyArray<[string, keyof SystemProperties]> = [
  ["$.mid", "messageId"],
  ["$.cid", "correlationId"],
  ["$.uid", "userId"],
  ["$.to", "to"],
  ["$.exp", "expiryTimeUtc"],
  ["$.ct", "contentType"],
  ["$.ce", "contentEncoding"],
  ["$.on", "outputName"],
  ["$.schema", "messageSchema"],
  ["$.ctime", "creationTimeUtc"],
  ["$.ifid", "interfaceId"],
  ["$.sub", "component"],
  ["$.cdid", "connectionDeviceId"],
  ["$.cmid", "connectionModuleId"],
];

export interface DecodedBag {
  properties: Record<string, string>;
  systemProperties: SystemProperties;
}

/** Splits and URL-decodes a bag (without a leading `?`); throws STRATA_MQTT_BAD_PROPERTY_BAG on bad escapes. */
export function decodePropertyBag(bag: string): DecodedBag {
  const properties: Record<string, string> = {};
  const systemProperties: SystemProperties = {};
  if (bag.startsWith("?")) bag = bag.slice(1);
  if (bag === "") return { properties, systemProperties };
  for (const pair of bag.split("&")) {
    if (pair === "") continue; // `a=1&&b=2`, a trailing `&`: nothing to take
    const eq = pair.indexOf("=");
    const key = decodePart(eq < 0 ? pair : pair.slice(0, eq), bag);
    const value = eq < 0 ? "" : decodePart(pair.slice(eq + 1), bag);
    if (key === "") {
      throw new StrataError(
        "STRATA_MQTT_BAD_PROPERTY_BAG",
        `property bag "${truncate(bag)}" has a value with no key; write pairs as key=value separated by &`,
      );
    }
    const system = INBOUND_SYSTEM_KEYS[key];
    if (system) systemProperties[system] = value;
    else if (!INBOUND_IGNORED_KEYS.has(key)) properties[key] = value;
  }
  return { properties, systemProperties };
}

/** The InboundMessage a head hands to `Hub.ingest` for a telemetry publish. */
export function inboundFromBag(bag: string, body: Buffer): InboundMessage {
  const { properties, systemProperties } = decodePropertyBag(bag);
  return { body, properties, systemProperties };
}

/**
 * The bag for a message going down (C2D, module input): system properties first, then application ones,
 * every key and value URL-encoded (the Node SDK splits on `&` and `=` and URL-decodes both).
 */
export function encodePropertyBag(message: Pick<Message, "properties" | "systemProperties">): string {
  const parts: string[] = [];
  const sys = message.systemProperties;
  for (const [key, field] of OUTBOUND_SYSTEM_KEYS) {
    const value = sys[field];
    if (value !== undefined && value !== "") parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  }
  for (const [key, value] of Object.entries(message.properties)) {
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  }
  return parts.join("&");
}

function decodePart(part: string, bag: string): string {
  try {
    return decodeURIComponent(part);
  } catch (cause) {
    throw new StrataError(
      "STRATA_MQTT_BAD_PROPERTY_BAG",
      `property bag "${truncate(bag)}" has a malformed %-escape in "${truncate(part)}"; URL-encode keys and values (encodeURIComponent)`,
      { cause },
    );
  }
}

function truncate(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}
