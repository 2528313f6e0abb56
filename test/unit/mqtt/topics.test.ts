import assert from "node:assert/strict";
import { test } from "node:test";
import {
  c2dTopic, checkPublish, checkSubscription, desiredPatchTopic, inputTopic, methodRequestTopic, parseInboundTopic,
  queryValue, twinResponseTopic,
} from "../../../plugins/mqtt/topics.js";

const device = { deviceId: "d1" };
const mod = { deviceId: "d1", moduleId: "m1" };

test("device telemetry with a bag, an empty bag, and no trailing slash", () => {
  assert.deepEqual(parseInboundTopic("devices/d1/messages/events/a=1&b=2"), { kind: "telemetry", deviceId: "d1", bag: "a=1&b=2" });
  assert.deepEqual(parseInboundTopic("devices/d1/messages/events/"), { kind: "telemetry", deviceId: "d1", bag: "" });
  assert.deepEqual(parseInboundTopic("devices/d1/messages/events"), { kind: "telemetry", deviceId: "d1", bag: "" });
});

test("module telemetry (outputs travel in $.on)", () => {
  assert.deepEqual(parseInboundTopic("devices/d1/modules/m1/messages/events/%24.on=out1"), {
    kind: "telemetry", deviceId: "d1", moduleId: "m1", bag: "%24.on=out1",
  });
  assert.deepEqual(parseInboundTopic("devices/d1/modules/m1/messages/events"), { kind: "telemetry", deviceId: "d1", moduleId: "m1", bag: "" });
});

test("the trailing '/' the Node SDK puts after an output event's bag is not part of the bag", () => {
  assert.deepEqual(parseInboundTopic("devices/d1/modules/m1/messages/events/%24.on=o&p=1/"), {
    kind: "telemetry", deviceId: "d1", moduleId: "m1", bag: "%24.on=o&p=1",
  });
});

test("a bag that contains a slash is kept whole", () => {
  assert.deepEqual(parseInboundTopic("devices/d1/messages/events/a=x/y"), { kind: "telemetry", deviceId: "d1", bag: "a=x/y" });
});

test("twin GET and reported PATCH, with and without the slash before '?'", () => {
  assert.deepEqual(parseInboundTopic("$iothub/twin/GET/?$rid=42"), { kind: "twin-get", rid: "42" });
  assert.deepEqual(parseInboundTopic("$iothub/twin/GET?$rid=42"), { kind: "twin-get", rid: "42" });
  assert.deepEqual(parseInboundTopic("$iothub/twin/PATCH/properties/reported/?$rid=7"), { kind: "twin-reported", rid: "7" });
  assert.deepEqual(parseInboundTopic("$iothub/twin/PATCH/properties/reported?$rid=7&x=1"), { kind: "twin-reported", rid: "7" });
});

test("a twin request without $rid is unknown", () => {
  assert.deepEqual(parseInboundTopic("$iothub/twin/GET/"), { kind: "unknown" });
  assert.deepEqual(parseInboundTopic("$iothub/twin/GET/?$rid="), { kind: "unknown" });
  assert.deepEqual(parseInboundTopic("$iothub/twin/GETX/?$rid=1"), { kind: "unknown" });
});

test("method responses carry status and rid", () => {
  assert.deepEqual(parseInboundTopic("$iothub/methods/res/200/?$rid=ab"), { kind: "method-response", status: 200, rid: "ab" });
  assert.deepEqual(parseInboundTopic("$iothub/methods/res/404?$rid=1"), { kind: "method-response", status: 404, rid: "1" });
  assert.deepEqual(parseInboundTopic("$iothub/methods/res/abc/?$rid=1"), { kind: "unknown" });
  assert.deepEqual(parseInboundTopic("$iothub/methods/res/200/"), { kind: "unknown" });
});

test("anything else is unknown", () => {
  for (const t of [
    "", "devices", "devices/", "devices/d1", "devices/d1/messages", "devices/d1/messages/devicebound/x",
    "devices/d1/modules/m1/inputs/in1/", "$iothub/methods/POST/reboot/?$rid=1", "$iothub/twin/res/200/?$rid=1",
    "$iothub/twin/PATCH/properties/desired/?$version=2", "other/topic", "$SYS/broker",
  ]) {
    assert.deepEqual(parseInboundTopic(t), { kind: "unknown" }, t);
  }
});

test("queryValue returns the raw value of one key", () => {
  assert.equal(queryValue("$rid=1&$version=4", "$version"), "4");
  assert.equal(queryValue("$rid=a%20b", "$rid"), "a%20b");
  assert.equal(queryValue("x=1", "$rid"), undefined);
});

test("a device may publish its own telemetry and $iothub requests", () => {
  assert.ok(checkPublish(device, "devices/d1/messages/events/a=1").ok);
  assert.ok(checkPublish(device, "$iothub/twin/GET/?$rid=1").ok);
  assert.ok(checkPublish(device, "$iothub/twin/PATCH/properties/reported/?$rid=1").ok);
  assert.ok(checkPublish(device, "$iothub/methods/res/200/?$rid=1").ok);
});

test("a device may not publish another device's telemetry, nor as a module", () => {
  const other = checkPublish(device, "devices/d2/messages/events/");
  assert.equal(other.ok, false);
  assert.match((other as { reason: string }).reason, /devices\/d1\/messages\/events\//);
  assert.equal(checkPublish(device, "devices/d1/modules/m1/messages/events/").ok, false);
});

test("a module publishes on its module topic only", () => {
  assert.ok(checkPublish(mod, "devices/d1/modules/m1/messages/events/%24.on=o").ok);
  assert.equal(checkPublish(mod, "devices/d1/messages/events/").ok, false);
  assert.equal(checkPublish(mod, "devices/d1/modules/m2/messages/events/").ok, false);
});

test("publishing on delivery topics (C2D, inputs, method requests, desired) is refused", () => {
  for (const t of [
    "devices/d1/messages/devicebound/x", "devices/d1/modules/m1/inputs/in/", "$iothub/methods/POST/m/?$rid=1",
    "$iothub/twin/PATCH/properties/desired/?$version=1", "$iothub/twin/res/200/?$rid=1",
  ]) {
    assert.equal(checkPublish(mod, t).ok, false, t);
    assert.equal(checkPublish(device, t).ok, false, t);
  }
});

test("the SDK's subscriptions are accepted with their kinds", () => {
  assert.deepEqual(checkSubscription(device, "devices/d1/messages/devicebound/#"), { ok: true, kind: "c2d" });
  assert.deepEqual(checkSubscription(mod, "devices/d1/modules/m1/inputs/#"), { ok: true, kind: "inputs" });
  assert.deepEqual(checkSubscription(device, "$iothub/twin/res/#"), { ok: true, kind: "twin-responses" });
  assert.deepEqual(checkSubscription(device, "$iothub/twin/PATCH/properties/desired/#"), { ok: true, kind: "desired" });
  assert.deepEqual(checkSubscription(mod, "$iothub/methods/POST/#"), { ok: true, kind: "methods" });
});

test("subscriptions to another identity's topics are refused with the right filter named", () => {
  const c2d = checkSubscription(device, "devices/d2/messages/devicebound/#");
  assert.equal(c2d.ok, false);
  assert.match((c2d as { reason: string }).reason, /devices\/d1\/messages\/devicebound\/#/);
  assert.equal(checkSubscription(mod, "devices/d1/modules/m2/inputs/#").ok, false);
  assert.equal(checkSubscription(mod, "devices/d2/modules/m1/inputs/#").ok, false);
});

test("a module cannot take C2D and a device has no inputs", () => {
  assert.equal(checkSubscription(mod, "devices/d1/messages/devicebound/#").ok, false);
  assert.equal(checkSubscription(device, "devices/d1/modules/m1/inputs/#").ok, false);
});

test("wildcards that reach beyond one's own topics are refused", () => {
  for (const f of [
    "#", "+/#", "devices/#", "devices/+/messages/devicebound/#", "devices/d1/#", "devices/d1/messages/events/#",
    "$iothub/#", "$iothub/+/res/#", "$SYS/#", "devices/d1/messages/devicebound/+", "$iothub/twin/res/+",
  ]) {
    assert.equal(checkSubscription(device, f).ok, false, f);
  }
});

test("outbound topics", () => {
  assert.equal(c2dTopic("d1", "a=1"), "devices/d1/messages/devicebound/a=1");
  assert.equal(c2dTopic("d1", ""), "devices/d1/messages/devicebound/");
  // The Node SDK needs a segment after the input name (iot-hub-wire.md).
  assert.equal(inputTopic("d1", "m1", "in1", ""), "devices/d1/modules/m1/inputs/in1/");
  assert.equal(twinResponseTopic(200, "r1"), "$iothub/twin/res/200/?$rid=r1");
  assert.equal(twinResponseTopic(204, "r1", 5), "$iothub/twin/res/204/?$rid=r1&$version=5");
  assert.equal(desiredPatchTopic(3), "$iothub/twin/PATCH/properties/desired/?$version=3");
  assert.equal(methodRequestTopic("reboot", "a1"), "$iothub/methods/POST/reboot/?$rid=a1");
});

test("outbound topics parse back as the inbound ones a device would answer on", () => {
  assert.deepEqual(parseInboundTopic(`$iothub/methods/res/200/?$rid=${"a1"}`), { kind: "method-response", status: 200, rid: "a1" });
});
