import assert from "node:assert/strict";
import { test } from "node:test";
import { c2dTargetOf, parseAuthChain, parseLinkAddress } from "../../../plugins/amqp/addresses.js";

test("device and module addresses, case-insensitive, with or without an amqps:// prefix", () => {
  assert.deepEqual(parseLinkAddress("/devices/d1/messages/events"), { kind: "events", deviceId: "d1" });
  assert.deepEqual(parseLinkAddress("/DEVICES/d1/Messages/Events/"), { kind: "events", deviceId: "d1" });
  assert.deepEqual(parseLinkAddress("/devices/d1/modules/m1/messages/events"), { kind: "events", deviceId: "d1", moduleId: "m1" });
  assert.deepEqual(parseLinkAddress("amqps://hub.example:5671/devices/d1/messages/devicebound"), { kind: "c2d", deviceId: "d1" });
  assert.deepEqual(parseLinkAddress("/devices/d1/twin"), { kind: "twin", deviceId: "d1" });
  assert.deepEqual(parseLinkAddress("/devices/d1/modules/m/methods/devicebound"), { kind: "methods", deviceId: "d1", moduleId: "m" });
  assert.deepEqual(parseLinkAddress("/devices/a%2Fb/twin"), { kind: "twin", deviceId: "a/b" });
});

test("$cbs and the service nodes", () => {
  assert.deepEqual(parseLinkAddress("$cbs"), { kind: "cbs" });
  assert.deepEqual(parseLinkAddress("/messages/devicebound"), { kind: "service-c2d" });
  assert.deepEqual(parseLinkAddress("/messages/serviceBound/feedback"), { kind: "service-feedback" });
});

test("unknown nodes are undefined", () => {
  for (const a of [undefined, "", "/devices", "/devices/d1", "/devices/d1/files", "/devices/%E0%A4%A/twin", "/foo"]) {
    assert.equal(parseLinkAddress(a), undefined, String(a));
  }
});

test("C2D target from the service message's to", () => {
  assert.equal(c2dTargetOf("/devices/d1/messages/devicebound"), "d1");
  assert.equal(c2dTargetOf("/devices/my%20dev/messages/devicebound"), "my dev");
  assert.equal(c2dTargetOf("/devices/d1/messages/events"), undefined);
  assert.equal(c2dTargetOf(undefined), undefined);
});

test("auth chain link property", () => {
  assert.deepEqual(parseAuthChain("leaf;child;"), ["leaf", "child"]);
  assert.equal(parseAuthChain(7), undefined);
  assert.equal(parseAuthChain(";"), undefined);
});
