// Batched transfers on the gateway-to-gateway link: many messages of one identity in one AMQP transfer, in the
// layout of IoT Hub's batched messages (message format 0x80013700, the body one data section per encoded
// message). Per message, AMQP framing, a delivery, a disposition and a flow credit cost a hop about as much CPU
// as its durable write; a batch pays them once. Only between Strata gateways, and only when the parent offers
// BATCH_CAPABILITY on its connection (an older parent is sent single messages).
import rhea from "rhea";
import type { AmqpMessage } from "./convert.js";

export const BATCH_FORMAT = 0x80013700;
export const BATCH_CAPABILITY = "com.strata:batch-v1";
/**
 * Messages per batch, and the body bytes above which a batch is closed: an eighth of the default 1 MiB
 * max_message_bytes. A parent configured below it refuses the batch, and the child then sends each alone.
 */
export const BATCH_MAX_MESSAGES = 64;
export const BATCH_MAX_BYTES = 128 * 1024;

/** An empty header section and an empty properties section (each a described empty list). */
const EMPTY_HEAD = Buffer.from([0x00, 0x53, 0x70, 0x45, 0x00, 0x53, 0x73, 0x45]);

/** The transfer payload of a batch (rhea sends it as is with `format` BATCH_FORMAT). */
export function encodeBatch(messages: readonly AmqpMessage[]): Buffer {
  const sections = messages.map((m) => rhea.message.encode(m as rhea.Message));
  // The outer message written straight into one buffer (rhea's writer would grow and copy its buffer a few
  // times per batch), byte for byte as rhea writes it: an empty header and properties, then each data section,
  // descriptor 0x00 0x53 0x75 and the binary as vbin8 (0xa0, 1-byte length) or vbin32 (0xb0, 4-byte length).
  let size = EMPTY_HEAD.length;
  for (const s of sections) size += s.length + (s.length <= 0xff ? 5 : 8);
  const out = Buffer.allocUnsafe(size);
  let at = EMPTY_HEAD.copy(out, 0);
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

/** The messages of a batch payload, in order; throws on anything that is not one. */
export function decodeBatch(payload: Buffer): AmqpMessage[] {
  const outer = rhea.message.decode(payload) as { body?: unknown };
  const body = outer.body as { typecode?: number; content?: unknown; multiple?: boolean } | undefined;
  if (!body || body.typecode !== 0x75) throw new Error("a batch's body must be data sections");
  const parts = body.multiple && Array.isArray(body.content) ? body.content : [body.content];
  return parts.map((part, i) => {
    const bytes = Buffer.isBuffer(part) ? part : (part as { content?: unknown })?.content;
    if (!Buffer.isBuffer(bytes)) throw new Error(`section ${i} of a batch is not a data section`);
    return rhea.message.decode(bytes) as AmqpMessage;
  });
}

/** Whether the parent on this connection takes batches. */
export function offersBatches(connection: { remote?: { open?: { offered_capabilities?: unknown } } }): boolean {
  const caps = connection.remote?.open?.offered_capabilities;
  return Array.isArray(caps) ? caps.map(String).includes(BATCH_CAPABILITY) : String(caps ?? "") === BATCH_CAPABILITY;
}
