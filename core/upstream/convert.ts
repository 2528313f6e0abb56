// Message ↔ AMQP for the gateway-to-gateway link (contract: plugins/amqp is the parent side). A forwarded
// message looks to the parent like a device's message (IoT Hub's AMQP fields, so the head's device-path
// parsing applies) plus Strata's annotations, which carry the metadata the origin stamped.
import { message as rheaMessage, types as rheaTypes } from "rhea";
import type { Message, SystemProperties } from "../message.js";

/** Strata's message annotations. The parent calls hub.forward (dedup by id) when `x-opt-strata-id` is present. */
export const STRATA_ANNOTATIONS = {
  id: "x-opt-strata-id",
  origin: "x-opt-strata-origin",
  source: "x-opt-strata-source",
  enqueued: "x-opt-strata-enqueued",
  deadline: "x-opt-strata-deadline",
  priority: "x-opt-strata-priority",
  /** The sender's clock when it sent the message (long ms): the receiver rebases the deadline onto its own clock. */
  sent: "x-opt-strata-sent",
} as const;

/**
 * Clock differences below this are transit time and noise, not skew: the deadline is kept as it is. Above it the
 * receiver moves the deadline by (its now − the sender's sent), so a hop whose clock runs ahead of its child's
 * does not drop fresh messages, and one behind does not keep them past their time.
 */
export const SKEW_TOLERANCE_MS = 2000;

/** Link property naming the identities between the link's target and the gateway that authenticated. */
export const AUTH_CHAIN_PROPERTY = "com.microsoft:auth-chain";

/** IoT Hub's application property for a module's output name. */
export const OUTPUT_NAME_PROPERTY = "iothub-outputname";
/** Application property with a C2D feedback request (as `azure-iothub` sends it). */
export const ACK_PROPERTY = "iothub-ack";

/** System properties IoT Hub carries as message annotations (long name → annotation). */
const ANNOTATED: Readonly<Record<string, string>> = {
  connectionDeviceId: "iothub-connection-device-id",
  connectionModuleId: "iothub-connection-module-id",
  creationTimeUtc: "iothub-creation-time-utc",
  messageSchema: "iothub-message-schema",
  interfaceId: "iothub-interface-id",
  component: "iothub-component-name",
  inputName: "x-opt-input-name",
};

/** System properties with a field of their own in the AMQP properties section. */
const PROPERTY_FIELDS = new Set(["messageId", "correlationId", "userId", "to", "contentType", "contentEncoding", "expiryTimeUtc", "outputName", "ack"]);

/** Prefix for any other system property (e.g. `ack`), so a hop loses none of them. */
const EXTRA_SYSTEM_PREFIX = "x-opt-strata-sys-";

/** An AMQP message as rhea sends and receives it. */
export interface AmqpMessage {
  message_id?: string | number | Buffer;
  correlation_id?: string | number | Buffer;
  user_id?: Buffer;
  to?: string;
  content_type?: string;
  content_encoding?: string;
  absolute_expiry_time?: Date | number;
  application_properties?: Record<string, unknown>;
  message_annotations?: Record<string, unknown>;
  body?: unknown;
}

/** The telemetry address of an identity: `/devices/{d}[/modules/{m}]/messages/events`. */
export function eventsAddress(identity: string): string {
  const slash = identity.indexOf("/");
  const device = slash < 0 ? identity : identity.slice(0, slash);
  const module = slash < 0 ? undefined : identity.slice(slash + 1);
  return `/devices/${encodeURIComponent(device)}${module ? `/modules/${encodeURIComponent(module)}` : ""}/messages/events`;
}

/** A Strata message as the upstream link sends it; `sentAt` (this gateway's clock) lets the parent correct for skew. Pure. */
export function toAmqpMessage(message: Message, sentAt?: number): AmqpMessage {
  const sys = message.systemProperties;
  const out: AmqpMessage = {
    body: rheaMessage.data_section(message.body),
    application_properties: { ...message.properties },
    message_annotations: {
      [STRATA_ANNOTATIONS.id]: message.id,
      [STRATA_ANNOTATIONS.origin]: message.origin,
      [STRATA_ANNOTATIONS.source]: message.source,
      // Milliseconds exceed 32 bits: typed as long so every peer decodes the same integer (as plugins/amqp does).
      [STRATA_ANNOTATIONS.enqueued]: rheaTypes.wrap_long(message.enqueuedTime),
      [STRATA_ANNOTATIONS.deadline]: rheaTypes.wrap_long(message.deadline),
      [STRATA_ANNOTATIONS.priority]: rheaTypes.wrap_int(message.priority),
    },
  };
  if (sentAt !== undefined) out.message_annotations![STRATA_ANNOTATIONS.sent] = rheaTypes.wrap_long(sentAt);
  if (sys.messageId !== undefined) out.message_id = sys.messageId;
  if (sys.correlationId !== undefined) out.correlation_id = sys.correlationId;
  if (sys.userId !== undefined) out.user_id = Buffer.from(sys.userId, "utf8");
  if (sys.to !== undefined) out.to = sys.to;
  if (sys.contentType !== undefined) out.content_type = sys.contentType;
  if (sys.contentEncoding !== undefined) out.content_encoding = sys.contentEncoding;
  const expiry = Date.parse(sys.expiryTimeUtc ?? "");
  if (Number.isFinite(expiry)) out.absolute_expiry_time = new Date(expiry);
  if (sys.outputName !== undefined) out.application_properties![OUTPUT_NAME_PROPERTY] = sys.outputName;
  if (sys.ack !== undefined) out.application_properties![ACK_PROPERTY] = sys.ack;
  for (const [name, value] of Object.entries(sys)) {
    if (value === undefined || PROPERTY_FIELDS.has(name)) continue;
    out.message_annotations![ANNOTATED[name] ?? `${EXTRA_SYSTEM_PREFIX}${name}`] = value;
  }
  return out;
}

/** System property name by its annotation (built once: this runs for every forwarded message). */
const BY_ANNOTATION: ReadonlyMap<string, string> = new Map(Object.entries(ANNOTATED).map(([name, ann]) => [ann, name]));

/**
 * The inverse of toAmqpMessage: the Strata message a parent rebuilds, or undefined when the AMQP message
 * carries no Strata id (it came from a device, not from a child gateway). Lives here so both sides of the
 * link agree; the AMQP head keeps its own copy until this moves into core's public face.
 */
export function fromAmqpMessage(amqp: AmqpMessage, now: number = Date.now()): Message | undefined {
  const ann = amqp.message_annotations ?? {};
  const id = ann[STRATA_ANNOTATIONS.id];
  if (typeof id !== "string" || id === "") return undefined;
  const systemProperties: SystemProperties = {};
  if (amqp.message_id !== undefined) systemProperties.messageId = idToString(amqp.message_id);
  if (amqp.correlation_id !== undefined) systemProperties.correlationId = idToString(amqp.correlation_id);
  if (amqp.user_id !== undefined) systemProperties.userId = Buffer.from(amqp.user_id).toString("utf8");
  if (amqp.to !== undefined) systemProperties.to = amqp.to;
  if (amqp.content_type !== undefined) systemProperties.contentType = amqp.content_type;
  if (amqp.content_encoding !== undefined) systemProperties.contentEncoding = amqp.content_encoding;
  if (amqp.absolute_expiry_time !== undefined) systemProperties.expiryTimeUtc = new Date(amqp.absolute_expiry_time).toISOString();
  const properties: Record<string, string> = {};
  for (const [k, v] of Object.entries(amqp.application_properties ?? {})) {
    if (k === OUTPUT_NAME_PROPERTY) systemProperties.outputName = String(v);
    else if (k === ACK_PROPERTY) systemProperties.ack = String(v);
    else if (v !== undefined && v !== null) properties[k] = String(v);
  }
  for (const [k, v] of Object.entries(ann)) {
    if (v === undefined || v === null) continue;
    const name = BY_ANNOTATION.get(k) ?? (k.startsWith(EXTRA_SYSTEM_PREFIX) ? k.slice(EXTRA_SYSTEM_PREFIX.length) : undefined);
    if (name) systemProperties[name] = String(v);
  }
  return {
    id,
    origin: String(ann[STRATA_ANNOTATIONS.origin] ?? ""),
    source: String(ann[STRATA_ANNOTATIONS.source] ?? ""),
    enqueuedTime: Number(ann[STRATA_ANNOTATIONS.enqueued] ?? 0),
    deadline: rebaseDeadline(Number(ann[STRATA_ANNOTATIONS.deadline] ?? 0), ann[STRATA_ANNOTATIONS.sent], now),
    priority: Number(ann[STRATA_ANNOTATIONS.priority] ?? 0),
    body: bodyBytes(amqp.body),
    properties,
    systemProperties,
  };
}

/** The deadline on the receiver's clock (see SKEW_TOLERANCE_MS); unchanged when the sender sent no clock. */
export function rebaseDeadline(deadline: number, sent: unknown, now: number): number {
  const at = Number(sent);
  if (sent === undefined || sent === null || !Number.isFinite(at) || at <= 0) return deadline;
  const skew = now - at;
  return Math.abs(skew) > SKEW_TOLERANCE_MS ? deadline + skew : deadline;
}

function idToString(id: string | number | Buffer): string {
  return Buffer.isBuffer(id) ? id.toString("hex") : String(id);
}

/** The bytes of an AMQP body: a data section (one or several), an amqp-value, a Buffer or a string. */
export function bodyBytes(body: unknown): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (typeof body === "object") {
    const section = body as { typecode?: number; content?: unknown; multiple?: boolean };
    if (section.typecode === 0x75 && Buffer.isBuffer(section.content)) return section.content;
    if (section.typecode === 0x75 && section.multiple && Array.isArray(section.content)) {
      return Buffer.concat(section.content.map((c) => bodyBytes(c)));
    }
    if (section.typecode === 0x77) return bodyBytes(section.content);
    if (body instanceof Uint8Array) return Buffer.from(body);
  }
  return Buffer.from(JSON.stringify(body), "utf8");
}

/** A JSON body (methods, twins); empty is null, text that is not JSON is returned as the string. */
export function parseJsonBody(body: unknown): unknown {
  const bytes = bodyBytes(body);
  if (bytes.length === 0) return null;
  const text = bytes.toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
