import { test } from "node:test";
import assert from "node:assert/strict";
import rhea from "rhea";
import { decodeBatch, encodeBatch } from "../../../core/upstream/batch.js";
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
  assert.deepEqual(back.map((m) => m.message_id), ["gw:1", "gw:2", "gw:3"]);
  assert.deepEqual(back.map((m) => (m.body as { content: Buffer }).content.length), [10, 300, 5000]);
});

test("a payload that is not data sections is refused", () => {
  assert.throws(() => decodeBatch(rhea.message.encode({ body: "text" } as rhea.Message)), /data sections/);
});
