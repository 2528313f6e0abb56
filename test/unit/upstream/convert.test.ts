import { test } from "node:test";
import assert from "node:assert/strict";
import { message as rheaMessage } from "rhea";
import type { Message } from "../../../core/message.js";
import { eventsAddress, fromAmqpMessage, STRATA_ANNOTATIONS, toAmqpMessage, type AmqpMessage } from "../../../core/upstream/convert.js";
import { strataMessageFromAmqp } from "../../../plugins/amqp/convert.js";
import { outcomeForRefusal, REFUSAL_ATTEMPTS } from "../../../core/upstream/refusals.js";

const message: Message = {
  id: "gw3:42", origin: "gw3", source: "dev/mod", enqueuedTime: 1_763_900_000_123, deadline: 1_763_907_200_123, priority: 3,
  body: Buffer.from([0, 1, 2, 255]),
  properties: { alert: "a b&c=d", n: "1" },
  systemProperties: {
    messageId: "m-1", correlationId: "c-1", userId: "u1", to: "/x", contentType: "application/json", contentEncoding: "utf-8",
    expiryTimeUtc: "2030-01-01T00:00:00.000Z", outputName: "out1", connectionDeviceId: "dev", connectionModuleId: "mod",
    creationTimeUtc: "2025-11-23T10:00:00.000Z", messageSchema: "s1", interfaceId: "dtmi:x;1", component: "thermo", ack: "full",
  },
};

test("a message survives the wire: encode, AMQP bytes, decode", () => {
  const bytes = rheaMessage.encode(toAmqpMessage(message));
  const back = fromAmqpMessage(rheaMessage.decode(bytes) as AmqpMessage);
  assert.deepEqual(back, message);
});

test("IoT Hub's fields go where a device SDK puts them; Strata's metadata in x-opt-strata-* annotations", () => {
  const amqp = rheaMessage.decode(rheaMessage.encode(toAmqpMessage(message))) as AmqpMessage;
  assert.equal(amqp.message_id, "m-1");
  assert.equal(amqp.content_type, "application/json");
  assert.equal(amqp.application_properties!["iothub-outputname"], "out1");
  assert.equal(amqp.message_annotations!["iothub-connection-device-id"], "dev");
  assert.equal(amqp.message_annotations![STRATA_ANNOTATIONS.id], "gw3:42");
  assert.equal(amqp.message_annotations![STRATA_ANNOTATIONS.enqueued], 1_763_900_000_123);
  assert.equal(amqp.message_annotations![STRATA_ANNOTATIONS.priority], 3);
});

test("a message with no Strata id (from a device) is not a forwarded message", () => {
  assert.equal(fromAmqpMessage({ body: "x", message_annotations: {} }), undefined);
});

test("events addresses for devices and modules, ids encoded", () => {
  assert.equal(eventsAddress("d1"), "/devices/d1/messages/events");
  assert.equal(eventsAddress("d1/m1"), "/devices/d1/modules/m1/messages/events");
  assert.equal(eventsAddress("d 1"), "/devices/d%201/messages/events");
});

test("refusal table: permanent at once, identity refusals after three tries, the rest retried", () => {
  assert.deepEqual(outcomeForRefusal({ condition: "amqp:link:message-size-exceeded" }, 0), { deadLetter: "refused by the parent: amqp:link:message-size-exceeded" });
  assert.equal(outcomeForRefusal({ condition: "amqp:unauthorized-access" }, 0), "retry");
  assert.ok(typeof outcomeForRefusal({ condition: "amqp:unauthorized-access" }, REFUSAL_ATTEMPTS - 1) === "object");
  for (const c of ["amqp:internal-error", "amqp:resource-limit-exceeded", "com.microsoft:server-busy", undefined]) {
    assert.equal(outcomeForRefusal(c ? { condition: c } : {}, 99), "retry", String(c));
  }
});

test("the parent's AMQP head (plugins/amqp) rebuilds the message core sends, connection ids included", () => {
  const wire = rheaMessage.decode(rheaMessage.encode(toAmqpMessage(message))) as Parameters<typeof strataMessageFromAmqp>[0];
  const parsed = strataMessageFromAmqp(wire, message.source)!;
  assert.deepEqual(parsed, message);
});
