import assert from "node:assert/strict";
import { test } from "node:test";
import { isStrataError } from "../../../core/index.js";
import { decodePropertyBag, encodePropertyBag, inboundFromBag } from "../../../plugins/mqtt/property-bag.js";

test("an empty bag gives no properties", () => {
  assert.deepEqual(decodePropertyBag(""), { properties: {}, systemProperties: {} });
  assert.deepEqual(decodePropertyBag("?"), { properties: {}, systemProperties: {} });
});

test("the Azure SDK's telemetry bag decodes to system and application properties", () => {
  // As captured from azure-iot-device-mqtt (spikes.md §2).
  const bag = "%24.mid=m-1&%24.cid=c-1&%24.uid=u1&%24.ct=application%2Fjson&%24.ce=utf-8&alert=a%20b%26c%3Dd";
  const d = decodePropertyBag(bag);
  assert.deepEqual(d.systemProperties, {
    messageId: "m-1", correlationId: "c-1", userId: "u1", contentType: "application/json", contentEncoding: "utf-8",
  });
  assert.deepEqual(d.properties, { alert: "a b&c=d" });
});

test("every inbound system key maps to its SystemProperties field", () => {
  const d = decodePropertyBag(
    "$.mid=1&$.cid=2&$.uid=3&$.to=%2Fdevices%2Fd&$.exp=2030-01-01T00%3A00%3A00Z&$.ct=ct&$.ce=ce&$.on=out1" +
      "&$.schema=s&$.ctime=2020-01-01T00%3A00%3A00Z&$.ifid=urn%3Aif&$.sub=comp",
  );
  assert.deepEqual(d.systemProperties, {
    messageId: "1", correlationId: "2", userId: "3", to: "/devices/d", expiryTimeUtc: "2030-01-01T00:00:00Z",
    contentType: "ct", contentEncoding: "ce", outputName: "out1", messageSchema: "s",
    creationTimeUtc: "2020-01-01T00:00:00Z", interfaceId: "urn:if", component: "comp",
  });
  assert.deepEqual(d.properties, {});
});

test("a device cannot set who sent a message ($.cdid / $.cmid are dropped)", () => {
  const d = decodePropertyBag("$.cdid=other&$.cmid=mod&k=v");
  assert.deepEqual(d.systemProperties, {});
  assert.deepEqual(d.properties, { k: "v" });
});

test("unknown $-keys are application properties", () => {
  assert.deepEqual(decodePropertyBag("%24.custom=1").properties, { "$.custom": "1" });
});

test("a key without '=' has an empty value; empty pairs are skipped", () => {
  assert.deepEqual(decodePropertyBag("flag&&a=1&").properties, { flag: "", a: "1" });
});

test("'=' inside an encoded value survives and only the first '=' splits", () => {
  assert.deepEqual(decodePropertyBag("k=a=b").properties, { k: "a=b" });
  assert.deepEqual(decodePropertyBag("k=a%3Db").properties, { k: "a=b" });
});

test("unicode keys and values decode", () => {
  const enc = `${encodeURIComponent("température")}=${encodeURIComponent("21 °C ✓")}`;
  assert.deepEqual(decodePropertyBag(enc).properties, { température: "21 °C ✓" });
});

test("a leading '?' is tolerated", () => {
  assert.deepEqual(decodePropertyBag("?a=1").properties, { a: "1" });
});

test("a malformed %-escape is a STRATA_MQTT_BAD_PROPERTY_BAG error naming the part", () => {
  assert.throws(() => decodePropertyBag("a=%zz"), (e: unknown) => isStrataError(e, "STRATA_MQTT_BAD_PROPERTY_BAG") && /%zz/.test((e as Error).message));
  assert.throws(() => decodePropertyBag("%E0%A4%A=1"), (e: unknown) => isStrataError(e, "STRATA_MQTT_BAD_PROPERTY_BAG"));
});

test("a value with no key is refused", () => {
  assert.throws(() => decodePropertyBag("=v"), (e: unknown) => isStrataError(e, "STRATA_MQTT_BAD_PROPERTY_BAG"));
});

test("inboundFromBag carries the body through untouched", () => {
  const body = Buffer.from([0, 1, 2, 255]);
  const m = inboundFromBag("$.mid=x", body);
  assert.equal(m.body, body);
  assert.equal(m.systemProperties.messageId, "x");
});

test("encode writes system keys first, in a fixed order, then application properties", () => {
  const bag = encodePropertyBag({
    properties: { b: "2", a: "1" },
    systemProperties: { correlationId: "c", messageId: "m", contentType: "application/json" },
  });
  assert.equal(bag, "%24.mid=m&%24.cid=c&%24.ct=application%2Fjson&b=2&a=1");
});

test("encode writes $.cdid and $.cmid for module inputs and skips empty values", () => {
  const bag = encodePropertyBag({ properties: {}, systemProperties: { connectionDeviceId: "d1", connectionModuleId: "m1", to: "" } });
  assert.equal(bag, "%24.cdid=d1&%24.cmid=m1");
});

test("encode escapes '&', '=', '/', '#', '+' and spaces so the SDK's split still works", () => {
  const bag = encodePropertyBag({ properties: { "k&=": "v/#+ x" }, systemProperties: {} });
  assert.equal(bag, "k%26%3D=v%2F%23%2B%20x");
  assert.ok(!bag.includes("/"));
});

test("encode then decode round-trips application properties and shared system properties", () => {
  const properties = { "a b": "c&d", "ü": "=", plain: "x" };
  const systemProperties = { messageId: "id 1", correlationId: "c/2", contentEncoding: "utf-8", expiryTimeUtc: "2030-01-01T00:00:00.000Z" };
  const decoded = decodePropertyBag(encodePropertyBag({ properties, systemProperties }));
  assert.deepEqual(decoded.properties, properties);
  assert.deepEqual(decoded.systemProperties, systemProperties);
});

test("encode of nothing is the empty bag", () => {
  assert.equal(encodePropertyBag({ properties: {}, systemProperties: {} }), "");
});
