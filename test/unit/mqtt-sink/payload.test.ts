import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeBody, toEnvelope, toOutgoing, userProperties } from "../../../plugins/mqtt-sink/index.js";
import { message } from "./message.js";

test("the envelope has the telemetry tail's shape", () => {
  const m = message({
    source: "d1/m1",
    properties: { alert: "a b&c=d" },
    systemProperties: { messageId: "m-1", contentType: "application/json", contentEncoding: "utf-8", correlationId: undefined },
  });
  assert.deepEqual(toEnvelope(m), {
    deviceId: "d1",
    moduleId: "m1",
    enqueuedTime: "2026-01-02T03:04:05.678Z",
    messageId: "m-1",
    properties: { alert: "a b&c=d" },
    systemProperties: { messageId: "m-1", contentType: "application/json", contentEncoding: "utf-8" },
    body: '{"t":21.5}',
  });
});

test("a device's envelope has moduleId and messageId null when there are none", () => {
  const e = toEnvelope(message());
  assert.equal(e.moduleId, null);
  assert.equal(e.messageId, null);
  assert.equal(e.deviceId, "d1");
});

test("a body that is not UTF-8 is base64 with bodyEncoding", () => {
  const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
  assert.deepEqual(encodeBody(bytes), { body: bytes.toString("base64"), bodyEncoding: "base64" });
  assert.deepEqual(encodeBody(Buffer.from("héllo")), { body: "héllo" });
  const e = toEnvelope(message({ body: bytes }));
  assert.equal(Buffer.from(e.body, "base64").equals(bytes), true);
  assert.equal(e.bodyEncoding, "base64");
});

test("MQTT 5 user properties: application properties, bag keys, sender and Strata id", () => {
  const m = message({
    id: "root:42",
    source: "d1/m1",
    properties: { alert: "yes" },
    systemProperties: { messageId: "m-1", correlationId: "c-1", outputName: "out", contentType: "text/plain", custom: "x" },
  });
  assert.deepEqual(userProperties(m), {
    alert: "yes",
    "$.mid": "m-1",
    "$.cid": "c-1",
    "$.on": "out",
    "$.ct": "text/plain",
    "$.custom": "x",
    "$.cdid": "d1",
    "$.cmid": "m1",
    "strata-id": "root:42",
    "strata-enqueued-time": "2026-01-02T03:04:05.678Z",
  });
});

test("raw on MQTT 5: the body as payload, content type carried natively", () => {
  const m = message({ systemProperties: { contentType: "application/json" } });
  const out = toOutgoing(m, "raw", 5);
  assert.equal(out.payload, m.body);
  assert.equal(out.properties?.contentType, "application/json");
  assert.equal(out.properties?.userProperties["strata-id"], "root:1");
});

test("raw on MQTT 3.1.1: the body only; envelope: JSON", () => {
  const m = message({ properties: { k: "v" } });
  assert.deepEqual(toOutgoing(m, "raw", 4), { payload: m.body });
  const env = toOutgoing(m, "envelope", 4);
  assert.equal(env.properties, undefined);
  assert.deepEqual(JSON.parse(env.payload.toString()).properties, { k: "v" });
  assert.equal(toOutgoing(m, "envelope", 5).properties?.contentType, "application/json");
});
