import { test } from "node:test";
import assert from "node:assert/strict";
import rhea from "rhea";
import { decodeBatch, encodeBatch, encodeRecordBatch } from "../../../core/upstream/batch.js";
import type { Message } from "../../../core/message.js";
import type { AmqpMessage } from "../../../core/upstream/convert.js";

const message = (n: number, bytes: number): AmqpMessage =>
  ({ message_id: `gw:${n}`, application_properties: { n }, body: rhea.message.data_section(Buffer.alloc(bytes, n)) }) as AmqpMessage;

test("a batch is the bytes rhea writes for the same data sections, short and long sections alike", () => {
  const messages = [message(1, 10), message(2, 300), message(3, 0), message(4, 70_000)];
  const sections = messages.map((m) => rhea.message.encode(m as rhea.Message));
  assert.ok(sections.some((s) => s.length <= 0xff) && sections.some((s) => s.length > 0xff));
  const byRhea = rhea.message.encode({ body: rhea.message.data_sections(sections) } as rhea.Message);
  assert.deepEqual(encodeBatch(messages), byRhea);
});

test("a batch decodes to its messages in order", () => {
  const messages = [message(1, 10), message(2, 300), message(3, 5000)];
  const back = decodeBatch(encodeBatch(messages));
  assert.equal(back.version, 1);
  assert.deepEqual(back.messages.map((m) => m.message_id), ["gw:1", "gw:2", "gw:3"]);
  assert.deepEqual(back.messages.map((m) => (m.body as { content: Buffer }).content.length), [10, 300, 5000]);
});

test("a payload that is not data sections is refused", () => {
  assert.throws(() => decodeBatch(rhea.message.encode({ body: "text" } as rhea.Message)), /data sections/);
});

const strata = (n: number, bytes: number, over: Partial<Message> = {}): Message => ({
  id: `gw2:${n}`, origin: "gw2", source: `leaf${n % 3}`, enqueuedTime: 1_700_000_000_000 + n, deadline: 1_700_000_600_000, priority: n % 10,
  body: Buffer.alloc(bytes, n), properties: { n: String(n), "é": "ü" }, systemProperties: { connectionDeviceId: `leaf${n % 3}`, contentType: "application/json" },
  ...over,
});

test("version 2: records come back as the same messages, in order, short and long alike", () => {
  const messages = [strata(1, 0), strata(2, 200), strata(3, 70_000)];
  const sentAt = Date.now();
  const back = decodeBatch(encodeRecordBatch(messages, sentAt), sentAt + 5);
  assert.equal(back.version, 2);
  assert.deepEqual(back.messages, messages);
});

test("version 3: records of several sources come back as the same messages, marked as version 3", () => {
  const messages = [strata(1, 10), strata(2, 20), strata(3, 30), strata(4, 40)];
  assert.equal(new Set(messages.map((m) => m.source)).size, 3);
  const sentAt = Date.now();
  const back = decodeBatch(encodeRecordBatch(messages, sentAt, 3), sentAt + 5);
  assert.equal(back.version, 3);
  assert.deepEqual(back.messages, messages);
});

test("version 2: the deadline moves onto the receiver's clock when the sender's is off by more than the tolerance", () => {
  const [m] = [strata(1, 10)];
  const sentAt = 1_700_000_000_000;
  const deadline = (now: number): number => {
    const b = decodeBatch(encodeRecordBatch([m!], sentAt), now);
    assert.equal(b.version, 2);
    return (b.messages[0] as Message).deadline;
  };
  assert.equal(deadline(sentAt + 1000), m!.deadline, "within tolerance: unchanged");
  assert.equal(deadline(sentAt + 60_000), m!.deadline + 60_000);
});

test("version 2: a malformed record is refused with the field at fault", () => {
  const good = encodeRecordBatch([strata(1, 10)], Date.now());
  const withRecord = (record: Buffer): Buffer => {
    const rebuilt = rhea.message.decode(good) as unknown as { message_annotations: Record<string, unknown> };
    return rhea.message.encode({ message_annotations: rebuilt.message_annotations, body: rhea.message.data_sections([record]) } as unknown as rhea.Message);
  };
  const record = (header: unknown, body = Buffer.alloc(3)): Buffer => {
    const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(json.length);
    return Buffer.concat([len, json, body]);
  };
  const base = { i: "gw2:1", o: "gw2", s: "leaf1", e: 1, d: 2, p: 0, pr: {}, sp: {} };
  assert.throws(() => decodeBatch(withRecord(Buffer.alloc(2))), /record 0 of a batch: shorter than its 4-byte header length/);
  assert.throws(() => decodeBatch(withRecord(record("{not json"))), /header is not JSON/);
  assert.throws(() => decodeBatch(withRecord(record({ ...base, i: "" }))), /field i \(Strata id\)/);
  assert.throws(() => decodeBatch(withRecord(record({ ...base, o: 7 }))), /field o \(origin\)/);
  assert.throws(() => decodeBatch(withRecord(record({ ...base, d: "soon" }))), /field d \(deadline\)/);
  assert.throws(() => decodeBatch(withRecord(record({ ...base, pr: { a: 1 } }))), /field pr \(properties\)/);
  assert.throws(() => decodeBatch(withRecord(record({ ...base, sp: [] }))), /field sp \(system properties\)/);
  const long = record(base);
  long.writeUInt32BE(9999, 0);
  assert.throws(() => decodeBatch(withRecord(long)), /header length 9999 runs past/);
  const ok = decodeBatch(withRecord(record({ ...base, p: 42 })));
  assert.equal(ok.version === 2 ? ok.messages[0]!.priority : undefined, 9, "priority clamped to 0-9");
});

test("a batch of a version this gateway does not know is refused by name", () => {
  const payload = rhea.message.encode({ message_annotations: { "x-opt-strata-batch": 4 }, body: rhea.message.data_sections([Buffer.alloc(4)]) } as unknown as rhea.Message);
  assert.throws(() => decodeBatch(payload), /batch version 4 is not understood \(this gateway reads 1 to 3\)/);
});
