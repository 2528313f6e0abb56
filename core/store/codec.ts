/**
 * On-disk layout of the store. One LevelDB, keys are UTF-8 strings with a one-letter area and NUL separators
 * (NUL sorts before every printable character, so `q\0ep\0…` ranges never overlap `q\0ep-2\0…`).
 *
 *   q\0{endpoint}\0{qseq hex}   queued message          value: record
 *   x\0{qseq hex}               dead letter             value: record (header carries endpoint, reason, at)
 *   e\0{seq hex}                dedup memory            value: JSON [[id, deadline], …] of the ids that left
 *                               their queues in one ack or dead letter (a queued record is its own dedup
 *                               entry, read back on open; see dedup.ts)
 *   d\0{strata id}              dedup memory, older     value: f64 deadline; folded into an e-record on open
 *   k\0{namespace}\0{key}       kv entry                value: JSON
 *   s\0ids                      id reservation limit    value: f64
 *
 * A record is `u32 header length | header JSON | raw body`: the body is never base64'd or copied into JSON,
 * and a scan that only needs the header (reopen) parses just the small prefix.
 */
import type { Message } from "../message.js";

export const SEP = "\u0000";
export const IDS_KEY = `s${SEP}ids`;

/** Fixed-width hex so key order is numeric order (2^52 sequences before it would overflow). */
export function seqHex(n: number): string {
  return n.toString(16).padStart(13, "0");
}

export function queueKey(endpoint: string, qseq: number): string {
  return `q${SEP}${endpoint}${SEP}${seqHex(qseq)}`;
}
export const deadKey = (qseq: number): string => `x${SEP}${seqHex(qseq)}`;
export const kvKey = (ns: string, key: string): string => `k${SEP}${ns}${SEP}${key}`;

/** Parses `q\0{endpoint}\0{hex}`; undefined for a malformed key. */
export function parseQueueKey(key: string): { endpoint: string; qseq: number } | undefined {
  const last = key.lastIndexOf(SEP);
  if (!key.startsWith(`q${SEP}`) || last <= 1) return undefined;
  return { endpoint: key.slice(2, last), qseq: parseInt(key.slice(last + 1), 16) };
}
export function parseDeadKey(key: string): number {
  return parseInt(key.slice(2), 16);
}

/** The header fields every record keeps besides the body. */
export interface RecordHeader {
  i: string; o: string; s: string; e: number; d: number; p: number;
  /** Fairness share, when it is not the source. */
  f?: string;
  /** Fairness group inside the share (the next hop down), when it is not the source. */
  g?: string;
  /** Local time it was stored (for queue age). */
  a: number;
  pr: Record<string, string>;
  sp: Message["systemProperties"];
  /** Dead letters only. */
  ep?: string; r?: string;
}

export function encodeRecord(
  m: Message, storedAt: number, dead?: { endpoint: string; reason: string }, share?: string, group?: string,
): Buffer {
  const h: RecordHeader = {
    i: m.id, o: m.origin, s: m.source, e: m.enqueuedTime, d: m.deadline, p: m.priority, a: storedAt,
    pr: m.properties, sp: m.systemProperties,
  };
  if (share !== undefined && share !== m.source) h.f = share;
  if (group !== undefined && group !== m.source) h.g = group;
  if (dead) { h.ep = dead.endpoint; h.r = dead.reason; }
  const json = JSON.stringify(h);
  const hlen = Buffer.byteLength(json);
  const out = Buffer.allocUnsafe(4 + hlen + m.body.length);
  out.writeUInt32BE(hlen, 0);
  out.write(json, 4, "utf8");
  m.body.copy(out, 4 + hlen);
  return out;
}

export function decodeHeader(v: Uint8Array): RecordHeader {
  const b = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const hlen = b.readUInt32BE(0);
  return JSON.parse(b.toString("utf8", 4, 4 + hlen)) as RecordHeader;
}

export function decodeRecord(v: Uint8Array): { header: RecordHeader; message: Message } {
  const b = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const hlen = b.readUInt32BE(0);
  const h = JSON.parse(b.toString("utf8", 4, 4 + hlen)) as RecordHeader;
  return { header: h, message: messageFrom(h, b.subarray(4 + hlen)) };
}

export function messageFrom(h: RecordHeader, body: Buffer): Message {
  return {
    id: h.i, origin: h.o, source: h.s, enqueuedTime: h.e, deadline: h.d, priority: h.p,
    properties: h.pr, systemProperties: h.sp, body,
  };
}

export function encodeF64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleBE(n, 0);
  return b;
}
export function decodeF64(v: Uint8Array): number {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).readDoubleBE(0);
}
