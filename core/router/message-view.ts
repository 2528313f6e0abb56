import { splitIdentityId, type Message } from "../message.js";
import type { Value } from "./values.js";

/** What a compiled condition reads from one message; built once per `match()` and shared by every route. */
export class MessageView {
  readonly deviceId: string;
  readonly moduleId: string | undefined;
  private json: unknown = NOT_PARSED;

  constructor(readonly message: Message) {
    const { deviceId, moduleId } = splitIdentityId(message.source);
    this.deviceId = deviceId;
    this.moduleId = moduleId;
  }

  /** The JSON body, parsed on first use; `INVALID` when the body is not JSON IoT Hub would query. */
  body(): unknown {
    if (this.json === NOT_PARSED) this.json = parseJsonBody(this.message);
    return this.json;
  }
}

const NOT_PARSED = Symbol("not parsed");
export const INVALID = Symbol("invalid body");

/** A reader of one system property, resolved at compile time so no name lookup happens per message. */
export type SystemReader = (view: MessageView) => Value;

const fromSystem = (key: string): SystemReader => (v) => v.message.systemProperties[key];

/**
 * `$name` → where it lives. Names are matched case-insensitively; IoT Hub's long AMQP names are aliases.
 * The sender's identity comes from `Message.source` (set by the hub from the authenticated connection), never
 * from the device-supplied property bag, so a device cannot route as another identity.
 */
const SYSTEM: Record<string, SystemReader> = {
  connectiondeviceid: (v) => v.deviceId,
  "iothub-connection-device-id": (v) => v.deviceId,
  connectionmoduleid: (v) => v.moduleId,
  "iothub-connection-module-id": (v) => v.moduleId,
  enqueuedtime: (v) => new Date(v.message.enqueuedTime).toISOString(),
  "iothub-enqueuedtime": (v) => new Date(v.message.enqueuedTime).toISOString(),
  messageid: fromSystem("messageId"),
  "message-id": fromSystem("messageId"),
  correlationid: fromSystem("correlationId"),
  "correlation-id": fromSystem("correlationId"),
  userid: fromSystem("userId"),
  "user-id": fromSystem("userId"),
  to: fromSystem("to"),
  contenttype: fromSystem("contentType"),
  "content-type": fromSystem("contentType"),
  contentencoding: fromSystem("contentEncoding"),
  "content-encoding": fromSystem("contentEncoding"),
  outputname: fromSystem("outputName"),
  inputname: fromSystem("inputName"),
  messageschema: fromSystem("messageSchema"),
  creationtimeutc: fromSystem("creationTimeUtc"),
  expirytimeutc: fromSystem("expiryTimeUtc"),
  interfaceid: fromSystem("interfaceId"),
  "dt-dataschema": fromSystem("interfaceId"),
  component: fromSystem("component"),
  "dt-subject": fromSystem("component"),
  ack: fromSystem("ack"),
};

/** Known names resolve through the table; any other `$name` reads `systemProperties[name]` as written. */
export function systemReader(name: string): SystemReader {
  return SYSTEM[name.toLowerCase()] ?? fromSystem(name);
}

export const KNOWN_SYSTEM_PROPERTIES: readonly string[] = Object.keys(SYSTEM);

/**
 * IoT Hub queries `$body` only when the content type is `application/json` and the content encoding is
 * UTF-8, UTF-16 or UTF-32 (both case-insensitive); any other body, or one that does not parse, is Undefined.
 */
export function parseJsonBody(message: Message): unknown {
  const type = message.systemProperties.contentType?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") return INVALID;
  const text = decode(message.body, message.systemProperties.contentEncoding?.trim().toLowerCase());
  if (text === undefined) return INVALID;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Not JSON despite its content type: every $body path is Undefined, as in IoT Hub.
    return INVALID;
  }
}

function decode(body: Buffer, encoding: string | undefined): string | undefined {
  try {
    switch (encoding) {
      case "utf-8":
        return new TextDecoder("utf-8", { fatal: true }).decode(body);
      case "utf-16": {
        const bigEndian = body.length >= 2 && body[0] === 0xfe && body[1] === 0xff;
        return new TextDecoder(bigEndian ? "utf-16be" : "utf-16le", { fatal: true }).decode(body);
      }
      case "utf-32":
        return decodeUtf32(body);
      default:
        return undefined;
    }
  } catch {
    // Malformed bytes for the declared encoding (TextDecoder fatal mode): Undefined, as in IoT Hub.
    return undefined;
  }
}

/** UTF-32, little-endian unless a big-endian BOM says otherwise (.NET's Encoding.UTF32 default). */
function decodeUtf32(body: Buffer): string | undefined {
  if (body.length % 4 !== 0) return undefined;
  let offset = 0;
  let bigEndian = false;
  if (body.length >= 4 && body.readUInt32BE(0) === 0x0000feff) {
    bigEndian = true;
    offset = 4;
  } else if (body.length >= 4 && body.readUInt32LE(0) === 0x0000feff) {
    offset = 4;
  }
  let out = "";
  let points: number[] = [];
  for (; offset < body.length; offset += 4) {
    const cp = bigEndian ? body.readUInt32BE(offset) : body.readUInt32LE(offset);
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
    points.push(cp);
    // Chunked: spreading a whole large body into one call would overflow the stack.
    if (points.length === 8192) {
      out += String.fromCodePoint(...points);
      points = [];
    }
  }
  return out + String.fromCodePoint(...points);
}

/** Walk a `$body` path; objects and arrays at the end are Undefined (edgeHub), as is any missing step. */
export function bodyPath(json: unknown, path: readonly (string | number)[]): Value {
  if (json === INVALID) return undefined;
  let at: unknown = json;
  for (const step of path) {
    if (typeof step === "number") {
      if (!Array.isArray(at) || step >= at.length) return undefined;
      at = at[step];
    } else {
      if (at === null || typeof at !== "object" || Array.isArray(at) || !Object.hasOwn(at, step)) return undefined;
      at = (at as Record<string, unknown>)[step];
    }
  }
  if (at === null || typeof at === "string" || typeof at === "number" || typeof at === "boolean") return at;
  return undefined;
}
