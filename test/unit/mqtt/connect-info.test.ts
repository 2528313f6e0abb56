import assert from "node:assert/strict";
import { test } from "node:test";
import { parseClientId, parseUsername, type ClientIdentity } from "../../../plugins/mqtt/connect-info.js";

function id(clientId: string): ClientIdentity {
  const r = parseClientId(clientId);
  assert.ok(r.ok, clientId);
  return r.value;
}

test("client ids: device and module", () => {
  assert.deepEqual(id("d1"), { id: "d1", deviceId: "d1" });
  assert.deepEqual(id("d1/m1"), { id: "d1/m1", deviceId: "d1", moduleId: "m1" });
  assert.deepEqual(id("gw/$edgeHub"), { id: "gw/$edgeHub", deviceId: "gw", moduleId: "$edgeHub" });
});

test("bad client ids are refused", () => {
  for (const c of ["", "a/b/c", "/m", "d/", "d 1", "x".repeat(129), "d1/m 1", "dé"]) {
    assert.equal(parseClientId(c).ok, false, c);
  }
  assert.equal(parseClientId(undefined).ok, false);
});

test("the Azure SDK's username parses", () => {
  const u = "myhub.azure-devices.net/d1/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.18.4%20(node%20v24.21.0%3B%20Debian%2012%3B%20x64)";
  const r = parseUsername(u, id("d1"));
  assert.ok(r.ok);
  assert.equal(r.value.host, "myhub.azure-devices.net");
  assert.equal(r.value.apiVersion, "2021-04-12");
  assert.equal(r.value.authChain, undefined);
});

test("a module username, with or without the slash before '?'", () => {
  assert.ok(parseUsername("hub/d1/m1/?api-version=1", id("d1/m1")).ok);
  assert.ok(parseUsername("hub/d1/m1?api-version=1", id("d1/m1")).ok);
});

test("auth-chain is split on ';' (encoded or not) and must start with the client id", () => {
  const r = parseUsername("hub/leaf/?api-version=1&auth-chain=leaf;gw3;gw2", id("leaf"));
  assert.ok(r.ok);
  assert.deepEqual(r.value.authChain, ["leaf", "gw3", "gw2"]);
  const enc = parseUsername("hub/leaf/?api-version=1&auth-chain=leaf%3Bgw3", id("leaf"));
  assert.ok(enc.ok);
  assert.deepEqual(enc.value.authChain, ["leaf", "gw3"]);
  assert.equal(parseUsername("hub/leaf/?api-version=1&auth-chain=other;gw3", id("leaf")).ok, false);
  assert.equal(parseUsername("hub/leaf/?api-version=1&auth-chain=leaf;;gw3", id("leaf")).ok, false);
});

test("usernames that do not name the client id are refused", () => {
  assert.equal(parseUsername("hub/d2/?api-version=1", id("d1")).ok, false);
  assert.equal(parseUsername("hub/d1/m1/?api-version=1", id("d1")).ok, false);
  assert.equal(parseUsername("d1/?api-version=1", id("d1")).ok, false);
  assert.equal(parseUsername("hub/d1/m2/?api-version=1", id("d1/m1")).ok, false);
});

test("a username without api-version, or none at all, is refused", () => {
  assert.equal(parseUsername("hub/d1/", id("d1")).ok, false);
  assert.equal(parseUsername("hub/d1/?api-version=", id("d1")).ok, false);
  assert.equal(parseUsername(undefined, id("d1")).ok, false);
  assert.equal(parseUsername("", id("d1")).ok, false);
});

test("unknown username keys are ignored; malformed escapes are refused", () => {
  assert.ok(parseUsername("hub/d1/?foo&api-version=1&model-id=dtmi%3Ax%3B1", id("d1")).ok);
  assert.equal(parseUsername("hub/d1/?api-version=%zz", id("d1")).ok, false);
});
