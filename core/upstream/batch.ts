// Batched transfers on the gateway-to-gateway link: many messages of one identity in one AMQP transfer, in the
// layout of IoT Hub's batched messages (message format 0x80013700, the body one data section per encoded
// message). Per message, AMQP framing, a delivery, a disposition and a flow credit cost a hop about as much CPU
// as its durable write; a batch pays them once. Only between Strata gateways, and only when the parent offers
// BATCH_CAPABILITY on its connection (an older parent is sent single messages).
//
// Version 2 (RECORD_BATCH_CAPABILITY) keeps the transfer and its data sections but makes each section a Strata
// record — a u32 header length, the header as JSON (id, origin, source, times, priority, properties) and the raw
// body — instead of an AMQP-encoded message, with the sender's clock once on the outer message. rhea's AMQP
// encoder and decoder cost a hop about a fifth of its CPU per message (measured, chain bench); V8's JSON does
// the same work in a fraction. A child uses the highest version its parent offers.
//
// Version 3 (MIXED_BATCH_CAPABILITY) is version 2's records from any identity in the sending gateway's scope,
// sent on that gateway's own link: version 2 went per identity, so a child with 20 busy leaves split every
// drained batch into 20 transfers of a few messages, and each transfer costs a hop its AMQP frames,
// disposition, store write and wake-ups (chain bench: 25 messages per transfer on average at full load). The
// parent checks every record's source against the sender's scope as it would an on-behalf-of link.
import rhea from "rhea";
import type { Message, SystemProperties } from "../message.js";
import { STRATA_ANNOTATIONS, rebaseDeadline, type AmqpMessage } from "./convert.js";

export const BATCH_FORMAT = 0x80013700;
export const BATCH_CAPABILITY = "com.strata:batch-v1";
export const RECORD_BATCH_CAPABILITY = "com.strata:batch-v2";
export const MIXED_BATCH_CAPABILITY = "com.strata:batch-v3";
/** Outer message annotation of a version 2 batch (its value is the version). */
export const BATCH_VERSION_ANNOTATION = "x-opt-strata-batch";
/**
 * Messages per batch, and the body bytes above which a batch is closed: an eighth of the default 1 MiB
 * max_message_bytes. A parent configured below it refuses the batch, and the child then sends each alone.
 */
export const BATCH_MAX_MESSAGES = 64;
export const BATCH_MAX_BYTES = 128 * 1024;

/** An empty header section and an empty properties section (each a described empty list). */
const EMPTY_HEAD = Buffer.from([0x00, 0x53, 0x70, 0x45, 0x00, 0x53, 0x73, 0x45]);

/** The transfer payload of a version 1 batch (rhea sends it as is with `format` BATCH_FORMAT). */
export function encodeBatch(messages: readonly AmqpMessage[]): Buffer {
  return withDataSections(EMPTY_HEAD, messages.map((m) => rhea.message.encode(m as rhea.Message)));
}

/** The transfer payload of a version 2 (or 3) batch: the sender's clock on the outer message, a record per message. */
export function encodeRecordBatch(messages: readonly Message[], sentAt: number, version: 2 | 3 = 2): Buffer {
  // An empty list of data sections: rhea writes no body section at all (with no body it would write a null
  // amqp-value), and the records' data sections follow.
  const head = rhea.message.encode({
    message_annotations: { [BATCH_VERSION_ANNOTATION]: version, [STRATA_ANNOTATIONS.sent]: rhea.types.wrap_long(sentAt) },
    body: rhea.message.data_sections([]),
  } as unknown as rhea.Message);
  return withDataSections(head, messages.map(encodeWireRecord));
}

/**
 * `head` (an encoded message without a body) followed by one data section per part, written straight into one
 * buffer (rhea's writer would grow and copy its buffer a few times per batch), byte for byte as rhea writes
 * them: descriptor 0x00 0x53 0x75 and the binary as vbin8 (0xa0, 1-byte length) or vbin32 (0xb0, 4-byte length).
 */
function withDataSections(head: Buffer, sections: readonly Buffer[]): Buffer {
  let size = head.length;
  for (const s of sections) size += s.length + (s.length <= 0xff ? 5 : 8);
  const out = Buffer.allocUnsafe(size);
  let at = head.copy(out, 0);
  for (const s of sections) {
    out[at++] = 0x00;
    out[at++] = 0x53;
    out[at++] = 0x75;
    if (s.length <= 0xff) {
      out[at++] = 0xa0;
      out[at++] = s.length;
    } else {
      out[at++] = 0xb0;
      out.writeUInt32BE(s.length, at);
      at += 4;
    }
    at += s.copy(out, at);
  }
  return out;
}

/**
 * A batch as received: version 1 carries AMQP messages, versions 2 and 3 Strata messages (deadline on this
 * clock); in version 3 their sources may differ from the link's identity (see the top of this file).
 */
export type DecodedBatch = { version: 1; messages: AmqpMessage[] } | { version: 2 | 3; messages: Message[] };

/** The messages of a batch payload, in order; throws, naming what is wrong, on anything that is not one. */
export function decodeBatch(payload: Buffer, now: number = Date.now()): DecodedBatch {
  const outer = rhea.message.decode(payload) as { body?: unknown; message_annotations?: Record<string, unknown> };
  const body = outer.body as { typecode?: number; content?: unknown; multiple?: boolean } | undefined;
  if (!body || body.typecode !== 0x75) throw new Error("a batch's body must be data sections");
  const parts = body.multiple && Array.isArray(body.content) ? body.content : [body.content];
  const sections = parts.map((part, i) => {
    const bytes = Buffer.isBuffer(part) ? part : (part as { content?: unknown })?.content;
    if (!Buffer.isBuffer(bytes)) throw new Error(`section ${i} of a batch is not a data section`);
    return bytes;
  });
  const annotations = outer.message_annotations ?? {};
  const version = annotations[BATCH_VERSION_ANNOTATION];
  if (version === undefined) return { version: 1, messages: sections.map((bytes) => rhea.message.decode(bytes) as AmqpMessage) };
  if (version !== 2 && version !== 3) throw new Error(`batch version ${String(version)} is not understood (this gateway reads 1 to 3)`);
  const sent = annotations[STRATA_ANNOTATIONS.sent];
  return { version, messages: sections.map((bytes, i) => decodeWireRecord(bytes, i, sent, now)) };
}

/** The header of a record on the wire (the store's record header without its local fields). */
interface WireHeader { i: string; o: string; s: string; e: number; d: number; p: number; pr: Record<string, string>; sp: SystemProperties }

function encodeWireRecord(m: Message): Buffer {
  const header: WireHeader = { i: m.id, o: m.origin, s: m.source, e: m.enqueuedTime, d: m.deadline, p: m.priority, pr: m.properties, sp: m.systemProperties };
  const json = JSON.stringify(header);
  const hlen = Buffer.byteLength(json);
  const out = Buffer.allocUnsafe(4 + hlen + m.body.length);
  out.writeUInt32BE(hlen, 0);
  out.write(json, 4, "utf8");
  m.body.copy(out, 4 + hlen);
  return out;
}

function decodeWireRecord(bytes: Buffer, index: number, sent: unknown, now: number): Message {
  const bad = (what: string): Error => new Error(`record ${index} of a batch: ${what}`);
  if (bytes.length < 4) throw bad("shorter than its 4-byte header length");
  const hlen = bytes.readUInt32BE(0);
  if (4 + hlen > bytes.length) throw bad(`header length ${hlen} runs past the record's ${bytes.length} bytes`);
  let h: Partial<WireHeader>;
  try {
    h = JSON.parse(bytes.toString("utf8", 4, 4 + hlen)) as Partial<WireHeader>;
  } catch {
    throw bad("header is not JSON");
  }
  if (typeof h !== "object" || h === null) throw bad("header is not an object");
  for (const [field, name] of [["i", "Strata id"], ["o", "origin"], ["s", "source"]] as const) {
    if (typeof h[field] !== "string" || (field !== "s" && h[field] === "")) throw bad(`field ${field} (${name}) must be a non-empty string`);
  }
  for (const [field, name] of [["e", "enqueued time"], ["d", "deadline"]] as const) {
    if (typeof h[field] !== "number" || !Number.isFinite(h[field]) || h[field] <= 0) throw bad(`field ${field} (${name}) must be a positive number of ms`);
  }
  if (!stringMap(h.pr)) throw bad("field pr (properties) must map names to strings");
  if (!stringMap(h.sp)) throw bad("field sp (system properties) must map names to strings");
  const p = typeof h.p === "number" && Number.isFinite(h.p) ? Math.max(0, Math.min(9, Math.trunc(h.p))) : 0;
  return {
    id: h.i!, origin: h.o!, source: h.s!, enqueuedTime: h.e!, deadline: rebaseDeadline(h.d!, sent, now), priority: p,
    properties: h.pr, systemProperties: h.sp as SystemProperties, body: bytes.subarray(4 + hlen),
  };
}

function stringMap(v: unknown): v is Record<string, string> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  for (const x of Object.values(v)) if (typeof x !== "string") return false;
  return true;
}

/** The highest batch version the parent on this connection takes (0: none, single messages only). */
export function offeredBatchVersion(connection: { remote?: { open?: { offered_capabilities?: unknown } } }): 0 | 1 | 2 | 3 {
  const raw = connection.remote?.open?.offered_capabilities;
  const caps = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).map(String);
  return caps.includes(MIXED_BATCH_CAPABILITY) ? 3 : caps.includes(RECORD_BATCH_CAPABILITY) ? 2 : caps.includes(BATCH_CAPABILITY) ? 1 : 0;
}
