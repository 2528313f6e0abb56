import assert from "node:assert/strict";
import { test } from "node:test";
import rhea from "rhea";
import type { Message } from "../../../core/index.js";
import {
  amqpFromMessage, bodyBytes, idToString, inboundFromAmqp, STRATA_ANNOTATIONS, strataMessageFromAmqp, type AmqpMessageIn,
} from "../../../plugins/amqp/convert.js";

/** What a peer receives: encoded by rhea and decoded again, as on the wire. */
function overTheWire(msg: unknown): AmqpMessageIn {
  return rhea.message.decode(rhea.message.encode(msg)) as AmqpMessageIn;
}

const sample: Message = {
  id: "gw-a:42", origin: "gw-a", source: "leaf1", enqueuedTime: 1_760_000_000_123, deadline: 1_760_007_200_123, priority: 3,
  body: Buffer.from('{"t":1}'),
  properties: { alert: "yes", "a b": "c&d" },
  systemProperties: {
    messageId: "m-1", correlationId: "c-1", contentType: "application/json", contentEncoding: "utf-8", outputName: "out1",
    connectionDeviceId: "leaf1", expiryTimeUtc: "2030-01-01T00:00:00.000Z", interfaceId: "dtmi:x;1",
  },
};

test("device message → AMQP → InboundMessage keeps body, system and application properties", () => {
  const wire = overTheWire(amqpFromMessage(sample));
  const back = inboundFromAmqp(wire);
  assert.equal(back.body.toString(), '{"t":1}');
  assert.deepEqual(back.properties, { alert: "yes", "a b": "c&d" });
  assert.equal(back.systemProperties.messageId, "m-1");
  assert.equal(back.systemProperties.correlationId, "c-1");
  assert.equal(back.systemProperties.contentType, "application/json");
  assert.equal(back.systemProperties.contentEncoding, "utf-8");
  assert.equal(back.systemProperties.outputName, "out1", "iothub-outputname is the module output");
  assert.equal(back.systemProperties.expiryTimeUtc, "2030-01-01T00:00:00.000Z");
  assert.equal(back.systemProperties.interfaceId, "dtmi:x;1");
});

test("Strata annotations round-trip: id, origin, source, enqueued and deadline as longs, priority", () => {
  const wire = overTheWire(amqpFromMessage(sample, { strata: true }));
  assert.equal(wire.message_annotations?.[STRATA_ANNOTATIONS.id], "gw-a:42");
  const m = strataMessageFromAmqp(wire, "leaf1");
  assert.ok(m);
  assert.equal(m.id, "gw-a:42");
  assert.equal(m.origin, "gw-a");
  assert.equal(m.source, "leaf1");
  assert.equal(m.enqueuedTime, 1_760_000_000_123);
  assert.equal(m.deadline, 1_760_007_200_123);
  assert.equal(m.priority, 3);
  assert.equal(m.body.toString(), '{"t":1}');
});

test("without x-opt-strata-id a message is a device's (ingest, not forward)", () => {
  assert.equal(strataMessageFromAmqp(overTheWire(amqpFromMessage(sample)), "leaf1"), undefined);
});

test("x-opt-strata-id without the rest is refused, naming the missing annotations", () => {
  const wire = overTheWire({ body: "x", message_annotations: { [STRATA_ANNOTATIONS.id]: "gw:1" } });
  assert.throws(() => strataMessageFromAmqp(wire, "d"), /x-opt-strata-origin/);
});

test("a module input carries x-opt-input-name and not the sender's output name", () => {
  const wire = overTheWire(amqpFromMessage(sample, { inputName: "in1" }));
  assert.equal(wire.message_annotations?.["x-opt-input-name"], "in1");
  assert.equal(wire.application_properties?.["iothub-outputname"], undefined);
  assert.equal(wire.message_annotations?.["iothub-connection-device-id"], "leaf1");
});

test("uuid ids come back as strings; bodies from data sections, strings and values", () => {
  const uuid = "8e9a4bd0-2e3b-4f61-9a5c-0c1d2e3f4a5b";
  assert.equal(idToString(rhea.string_to_uuid(uuid)), uuid);
  assert.equal(idToString(7), "7");
  assert.equal(bodyBytes(rhea.message.data_section(Buffer.from("ab"))).toString(), "ab");
  assert.equal(bodyBytes("text").toString(), "text");
  assert.equal(bodyBytes({ a: 1 }).toString(), '{"a":1}');
  const wire = overTheWire({ body: "amqp-value string", message_id: rhea.string_to_uuid(uuid) });
  const back = inboundFromAmqp(wire);
  assert.equal(back.body.toString(), "amqp-value string");
  assert.equal(back.systemProperties.messageId, uuid);
});

test("the service's iothub-ack becomes systemProperties.ack and goes back out as iothub-ack", () => {
  const inbound = inboundFromAmqp(overTheWire({ to: "/devices/d1/messages/devicebound", application_properties: { "iothub-ack": "full", k: 1 }, body: "x" }));
  assert.equal(inbound.systemProperties.ack, "full");
  assert.equal(inbound.systemProperties.to, "/devices/d1/messages/devicebound");
  assert.deepEqual(inbound.properties, { k: "1" });
});
