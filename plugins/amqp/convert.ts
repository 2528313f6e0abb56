import rhea from "rhea";
import { bodyBytes, fromAmqpMessage, parseJsonBody, STRATA_ANNOTATIONS, type AmqpMessage, type InboundMessage, type Message, type SystemProperties } from "../../core/index.js";

/**
 * Message ↔ AMQP 1.0 conversion, both directions, pure (no I/O). IoT Hub's mapping: AMQP properties carry
 * the system properties, application properties the user's, `iothub-outputname` the module output, message
 * annotations `x-opt-input-name` (delivery to a module input) and the connection device/module ids. Strata's
 * own metadata travels between gateways as `x-opt-strata-*` annotations.
 *
 * Core's upstream link (the child side of the gateway-to-gateway link) needs the same mapping; these
 * functions have no dependency on the plugin and are meant to move to core as they are.
 */

/** What rhea hands over for a received message (its typings say `any`); only the fields we read. */
export interface AmqpMessageIn {
  message_id?: unknown;
  correlation_id?: unknown;
  user_id?: unknown;
  to?: unknown;
  content_type?: unknown;
  content_encoding?: unknown;
  absolute_expiry_time?: unknown;
  creation_time?: unknown;
  application_properties?: Record<string, unknown>;
  message_annotations?: Record<string, unknown>;
  body?: unknown;
}

/** What we give rhea's `sender.send`. */
export interface AmqpMessageOut {
  message_id?: string | Buffer;
  correlation_id?: string | Buffer;
  to?: string;
  content_type?: string;
  content_encoding?: string;
  absolute_expiry_time?: Date;
  creation_time?: Date;
  application_properties?: Record<string, unknown>;
  message_annotations?: Record<string, unknown>;
  body: unknown;
}

/** Application property carrying a module's output name (IoT Hub). */
export const OUTPUT_NAME_PROPERTY = "iothub-outputname";
/** Application property with the C2D feedback request (`azure-iothub` sets it from `message.ack`). */
export const ACK_PROPERTY = "iothub-ack";
export const INPUT_NAME_ANNOTATION = "x-opt-input-name";
export const CONNECTION_DEVICE_ANNOTATION = "iothub-connection-device-id";
export const CONNECTION_MODULE_ANNOTATION = "iothub-connection-module-id";

/** Strata's metadata between gateways (the nesting contract): core's, shared with the upstream link. */
export { STRATA_ANNOTATIONS, bodyBytes, parseJsonBody };

/** Message annotations that map to system properties (IoT Hub's names). */
const ANNOTATION_SYSTEM: Record<string, keyof SystemProperties> = {
  "iothub-interface-id": "interfaceId",
  "iothub-component-name": "component",
  "iothub-message-schema": "messageSchema",
  "iothub-creation-time-utc": "creationTimeUtc",
};

/** A message id or correlation id as a string: rhea gives 16-byte uuids as Buffers, numbers as numbers. */
export function idToString(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Buffer.isBuffer(value)) return value.length === 16 ? rhea.uuid_to_string(value) : value.toString("utf8");
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  return undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A correlation id echoed to a peer in the type it used: a uuid string goes back as an AMQP uuid. */
export function echoId(value: unknown): string | Buffer | undefined {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === "string") return value;
  return idToString(value);
}


function stringOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  return JSON.stringify(value);
}

function isoOf(value: unknown): string | undefined {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "number") return new Date(value).toISOString();
  return stringOf(value);
}

function numberOf(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "string" && value.trim() !== "") {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  if (value instanceof Date) return value.getTime();
  return undefined;
}

/** A device's (or a service's) AMQP message as Strata's InboundMessage. */
export function inboundFromAmqp(msg: AmqpMessageIn): InboundMessage {
  const systemProperties: SystemProperties = {};
  const set = (key: keyof SystemProperties, value: string | undefined): void => {
    if (value !== undefined) systemProperties[key] = value;
  };
  set("messageId", idToString(msg.message_id));
  set("correlationId", idToString(msg.correlation_id));
  set("userId", idToString(msg.user_id));
  set("to", stringOf(msg.to));
  set("contentType", stringOf(msg.content_type));
  set("contentEncoding", stringOf(msg.content_encoding));
  set("expiryTimeUtc", isoOf(msg.absolute_expiry_time));
  set("creationTimeUtc", isoOf(msg.creation_time));
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(msg.application_properties ?? {})) {
    const text = stringOf(value);
    if (text === undefined) continue;
    if (key.toLowerCase() === OUTPUT_NAME_PROPERTY) systemProperties.outputName = text;
    else if (key.toLowerCase() === ACK_PROPERTY) systemProperties.ack = text;
    else properties[key] = text;
  }
  for (const [key, value] of Object.entries(msg.message_annotations ?? {})) {
    const name = ANNOTATION_SYSTEM[key.toLowerCase()];
    const text = stringOf(value);
    if (name && text !== undefined) systemProperties[name] = text;
  }
  return { body: bodyBytes(msg.body), properties, systemProperties };
}

/**
 * A message from a child gateway that carries Strata's id: the full Message as its origin stamped it, or
 * undefined when the annotations are absent (then it is a device's message: ingest, not forward). Throws when
 * the id is there but the rest is unusable.
 */
export function strataMessageFromAmqp(msg: AmqpMessageIn, source: string): Message | undefined {
  // One mapping for both ends of the gateway link: core's (core/upstream/convert.ts), so no field is lost a hop.
  const m = fromAmqpMessage(msg as AmqpMessage);
  if (!m) return undefined;
  if (!m.origin || !Number.isFinite(m.enqueuedTime) || m.enqueuedTime <= 0 || !Number.isFinite(m.deadline) || m.deadline <= 0) {
    throw new Error(`message ${m.id} has ${STRATA_ANNOTATIONS.id} but lacks ${STRATA_ANNOTATIONS.origin}, ${STRATA_ANNOTATIONS.enqueued} or ${STRATA_ANNOTATIONS.deadline}`);
  }
  const priority = Number.isFinite(m.priority) ? Math.max(0, Math.min(9, Math.trunc(m.priority))) : 0;
  return { ...m, source: m.source || source, priority };
}

export interface ToAmqpOptions {
  /** Add Strata's `x-opt-strata-*` annotations (gateway to gateway). */
  strata?: boolean;
  /** Delivery to a module input: the input's name in `x-opt-input-name`. */
  inputName?: string;
  /** Keep the module output name (`iothub-outputname`); a receiver of an input does not need it. */
  keepOutputName?: boolean;
}

/** A Strata Message as the AMQP message a device, a service client or a parent gateway receives. */
export function amqpFromMessage(message: Message | (InboundMessage & Partial<Message>), opts: ToAmqpOptions = {}): AmqpMessageOut {
  const sp = message.systemProperties;
  const out: AmqpMessageOut = { body: rhea.message.data_section(message.body) };
  if (sp.messageId !== undefined) out.message_id = sp.messageId;
  if (sp.correlationId !== undefined) out.correlation_id = sp.correlationId;
  if (sp.to !== undefined) out.to = sp.to;
  if (sp.contentType !== undefined) out.content_type = sp.contentType;
  if (sp.contentEncoding !== undefined) out.content_encoding = sp.contentEncoding;
  const expiry = sp.expiryTimeUtc !== undefined ? Date.parse(sp.expiryTimeUtc) : NaN;
  if (Number.isFinite(expiry)) out.absolute_expiry_time = new Date(expiry);
  const created = sp.creationTimeUtc !== undefined ? Date.parse(sp.creationTimeUtc) : NaN;
  if (Number.isFinite(created)) out.creation_time = new Date(created);

  const appProps: Record<string, unknown> = { ...message.properties };
  if (opts.keepOutputName !== false && sp.outputName !== undefined && !opts.inputName) appProps[OUTPUT_NAME_PROPERTY] = sp.outputName;
  if (sp.ack !== undefined) appProps[ACK_PROPERTY] = sp.ack;
  if (Object.keys(appProps).length > 0) out.application_properties = appProps;

  const ann: Record<string, unknown> = {};
  for (const [annotation, key] of Object.entries(ANNOTATION_SYSTEM)) {
    const v = sp[key];
    if (v !== undefined) ann[annotation] = v;
  }
  if (opts.inputName !== undefined) ann[INPUT_NAME_ANNOTATION] = opts.inputName;
  if (sp.connectionDeviceId !== undefined) ann[CONNECTION_DEVICE_ANNOTATION] = sp.connectionDeviceId;
  if (sp.connectionModuleId !== undefined) ann[CONNECTION_MODULE_ANNOTATION] = sp.connectionModuleId;
  if (opts.strata) {
    const m = message as Message;
    ann[STRATA_ANNOTATIONS.id] = m.id;
    ann[STRATA_ANNOTATIONS.origin] = m.origin;
    ann[STRATA_ANNOTATIONS.source] = m.source;
    // Milliseconds exceed 32 bits: say "long" so every peer decodes the same integer.
    ann[STRATA_ANNOTATIONS.enqueued] = rhea.types.wrap_long(m.enqueuedTime);
    ann[STRATA_ANNOTATIONS.deadline] = rhea.types.wrap_long(m.deadline);
    ann[STRATA_ANNOTATIONS.priority] = rhea.types.wrap_int(m.priority);
  }
  if (Object.keys(ann).length > 0) out.message_annotations = ann;
  return out;
}

/** A JSON body (twin documents, method payloads, feedback batches) as a data section. */
export function jsonBody(value: unknown): unknown {
  return rhea.message.data_section(Buffer.from(value === undefined ? "" : JSON.stringify(value), "utf8"));
}


/** Rough encoded size of a received message, for the message-size limit when rhea has already decoded it. */
export function encodedSize(msg: AmqpMessageIn): number {
  return rhea.message.encode(msg).length;
}

export { UUID as UUID_PATTERN };
