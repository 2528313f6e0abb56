import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKey, signSas } from "../../../core/index.js";
import { fakeDeviceLink, HUB, startHarness, type Harness } from "./service-harness.js";

async function harness(t: { after(fn: () => Promise<void>): void }): Promise<Harness> {
  const h = await startHarness();
  t.after(() => h.close());
  return h;
}

/** IoT Hub's error body: `Message` is "ErrorCode:<code>;<text>" (what azure-iothub parses). */
function errorOf(res: { json(): unknown; statusCode: number }): { code: string; text: string } {
  const body = res.json() as { Message: string; ExceptionMessage: string };
  assert.equal(typeof body.ExceptionMessage, "string");
  const m = /^ErrorCode:([^;]+);(.*)$/s.exec(body.Message);
  assert.ok(m, `IoT Hub error shape, got ${body.Message}`);
  return { code: m[1]!, text: m[2]! };
}

test("auth: no token, a device token, a wrong key and an expired token are refused with 401", async (t) => {
  const h = await harness(t);
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const deviceToken = signSas({ resource: `${HUB}/devices/d1`, key: generateKey(), expirySecs: exp });
  const cases: Record<string, string | undefined> = {
    "no token": undefined,
    "device token": deviceToken,
    "wrong key": h.token({ key: generateKey() }),
    expired: h.token({ expirySecs: Math.floor(Date.now() / 1000) - 3600 }),
    "unknown policy": h.token({ keyName: "registryRead" }),
  };
  for (const [name, auth] of Object.entries(cases)) {
    const res = await h.app.inject({ method: "GET", url: "/devices?api-version=2021-04-12", headers: auth ? { authorization: auth } : {} });
    assert.equal(res.statusCode, 401, name);
    assert.equal(errorOf(res).code, "IotHubUnauthorizedAccess", name);
  }
  const ok = await h.request("GET", "/devices?api-version=2021-04-12");
  assert.equal(ok.statusCode, 200);
  assert.deepEqual(ok.json(), []);
});

test("PUT /devices creates with generated keys; GET returns IoT Hub's device JSON; the keys authenticate", async (t) => {
  const h = await harness(t);
  const res = await h.request("PUT", "/devices/d1?api-version=2021-04-12", {
    deviceId: "d1", authentication: { type: "sas", symmetricKey: { primaryKey: "", secondaryKey: "" } },
  });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(String(res.headers["content-type"]), /application\/json/);
  const d = res.json();
  assert.equal(d.deviceId, "d1");
  assert.equal(d.status, "enabled");
  assert.equal(d.authentication.type, "sas");
  assert.equal(Buffer.from(d.authentication.symmetricKey.primaryKey, "base64").length, 32);
  assert.notEqual(d.authentication.symmetricKey.primaryKey, d.authentication.symmetricKey.secondaryKey);
  assert.equal(d.capabilities.iotEdge, false);
  assert.equal(d.connectionState, "Disconnected");
  assert.ok(d.etag && d.generationId);
  const got = await h.request("GET", "/devices/d1");
  assert.deepEqual(got.json(), d);
  const token = signSas({ resource: `${HUB}/devices/d1`, key: d.authentication.symmetricKey.primaryKey, expirySecs: Math.floor(Date.now() / 1000) + 60 });
  assert.equal(h.identities.verifySas("d1", token).ok, true);
});

test("If-Match: create twice is 409, '*' replaces, a stale etag is 412, delete then GET is 404 DeviceNotFound", async (t) => {
  const h = await harness(t);
  const created = (await h.request("PUT", "/devices/d1", { deviceId: "d1" })).json();
  const again = await h.request("PUT", "/devices/d1", { deviceId: "d1" });
  assert.equal(again.statusCode, 409);
  assert.equal(errorOf(again).code, "DeviceAlreadyExists");

  const disabled = await h.request("PUT", "/devices/d1", { ...created, status: "disabled" }, { "if-match": '"*"' });
  assert.equal(disabled.statusCode, 200);
  assert.equal(disabled.json().status, "disabled");
  assert.notEqual(disabled.json().etag, created.etag);
  assert.equal(disabled.json().generationId, created.generationId, "generationId survives an update");
  assert.equal(disabled.json().authentication.symmetricKey.primaryKey, created.authentication.symmetricKey.primaryKey);

  const stale = await h.request("PUT", "/devices/d1", { deviceId: "d1" }, { "if-match": `"${created.etag}"` });
  assert.equal(stale.statusCode, 412);
  assert.equal(errorOf(stale).code, "PreconditionFailed");
  const staleDelete = await h.request("DELETE", "/devices/d1", undefined, { "if-match": `"${created.etag}"` });
  assert.equal(staleDelete.statusCode, 412);

  const del = await h.request("DELETE", "/devices/d1", undefined, { "if-match": '"*"' });
  assert.equal(del.statusCode, 204);
  const gone = await h.request("GET", "/devices/d1");
  assert.equal(gone.statusCode, 404);
  assert.equal(errorOf(gone).code, "DeviceNotFound");
  assert.equal((await h.request("DELETE", "/devices/d1")).statusCode, 404);
  const recreated = (await h.request("PUT", "/devices/d1", { deviceId: "d1" })).json();
  assert.notEqual(recreated.generationId, created.generationId, "a new generation after delete");
});

test("400 names the field at fault", async (t) => {
  const h = await harness(t);
  const cases: [unknown, RegExp][] = [
    [{ deviceId: "d1", authentication: { symmetricKey: { primaryKey: "short" } } }, /authentication\.symmetricKey\.primaryKey/],
    [{ deviceId: "d1", status: "on" }, /device\.status/],
    [{ deviceId: "other" }, /device\.deviceId/],
    [{ deviceId: "d1", authentication: { type: "selfSigned" } }, /x509Thumbprint\.primaryThumbprint/],
    [{ deviceId: "d1", capabilities: { iotEdge: "yes" } }, /capabilities\.iotEdge/],
    [{ deviceId: "d1", deviceScope: "ms-azure-iot-edge://nope-123" }, /device\.deviceScope/],
  ];
  for (const [body, field] of cases) {
    const res = await h.request("PUT", "/devices/d1", body);
    assert.equal(res.statusCode, 400, JSON.stringify(body));
    const e = errorOf(res);
    assert.equal(e.code, "ArgumentInvalid");
    assert.match(e.text, field);
  }
  const badJson = await h.request("PUT", "/devices/d1", Buffer.from("{not json"), { "content-type": "application/json" });
  assert.equal(badJson.statusCode, 400);
  assert.match(errorOf(badJson).text, /device is not valid JSON/);
  const badId = await h.request("PUT", `/devices/${encodeURIComponent("a b")}`, {});
  assert.equal(badId.statusCode, 400);
  assert.match(errorOf(badId).text, /deviceId/);
});

test("self-signed and CA devices, edge devices and a leaf under one by its deviceScope", async (t) => {
  const h = await harness(t);
  const thumb = "A".repeat(40);
  const x = (await h.request("PUT", "/devices/x1", { deviceId: "x1", authentication: { x509Thumbprint: { primaryThumbprint: thumb } } })).json();
  assert.equal(x.authentication.type, "selfSigned");
  assert.equal(x.authentication.x509Thumbprint.primaryThumbprint, thumb);
  const ca = (await h.request("PUT", "/devices/c1", { deviceId: "c1", authentication: { type: "certificateAuthority" } })).json();
  assert.equal(ca.authentication.type, "certificateAuthority");

  const gw = (await h.request("PUT", "/devices/gw1", { deviceId: "gw1", capabilities: { iotEdge: true } })).json();
  assert.match(gw.deviceScope, /^ms-azure-iot-edge:\/\/gw1-\d+$/);
  const leaf = await h.request("PUT", "/devices/leaf1", { deviceId: "leaf1", deviceScope: gw.deviceScope });
  assert.equal(leaf.statusCode, 200, leaf.body);
  assert.equal(leaf.json().deviceScope, gw.deviceScope);
  assert.deepEqual(leaf.json().parentScopes, [gw.deviceScope]);
  assert.equal(h.identities.get("leaf1")?.parent, "gw1");
  assert.deepEqual(h.identities.authChain("leaf1"), ["leaf1", "gw1", "gw-root"]);
  const child = await h.request("PUT", "/devices/gw2", { deviceId: "gw2", capabilities: { iotEdge: true }, parentScopes: [gw.deviceScope] });
  assert.equal(child.statusCode, 200, child.body);
  assert.equal(h.identities.get("gw2")?.parent, "gw1");
  const underLeaf = await h.request("PUT", "/devices/leaf2", { deviceId: "leaf2", deviceScope: "leaf1" });
  assert.equal(underLeaf.statusCode, 400);
  assert.match(errorOf(underLeaf).text, /not an edge device/);
  const list = (await h.request("GET", "/devices")).json() as { deviceId: string }[];
  assert.deepEqual(list.map((d) => d.deviceId).sort(), ["c1", "gw1", "gw2", "leaf1", "x1"]);
});

test("modules: 404 on an unknown device, create, list, get; deleting the device removes its modules", async (t) => {
  const h = await harness(t);
  const orphan = await h.request("PUT", "/devices/d1/modules/m1", { deviceId: "d1", moduleId: "m1" });
  assert.equal(orphan.statusCode, 404);
  assert.equal(errorOf(orphan).code, "DeviceNotFound");
  await h.request("PUT", "/devices/d1", { deviceId: "d1" });
  const m = await h.request("PUT", "/devices/d1/modules/m1", { deviceId: "d1", moduleId: "m1", managedBy: "strata" });
  assert.equal(m.statusCode, 200, m.body);
  assert.equal(m.json().moduleId, "m1");
  assert.equal(m.json().managedBy, "strata");
  assert.equal(h.identities.get("d1/m1")?.parent, "d1");
  assert.equal((await h.request("GET", "/devices/d1/modules")).json().length, 1);
  assert.equal((await h.request("GET", "/devices/d1/modules/m1")).json().moduleId, "m1");
  const missing = await h.request("GET", "/devices/d1/modules/nope");
  assert.equal(missing.statusCode, 404);
  assert.equal(errorOf(missing).code, "ModuleNotFound");
  assert.deepEqual((await h.request("GET", "/devices")).json().map((d: { deviceId: string }) => d.deviceId), ["d1"], "modules are not devices");
  assert.equal((await h.request("DELETE", "/devices/d1")).statusCode, 204);
  assert.equal(h.identities.get("d1/m1"), undefined);
});

test("twins: GET, PATCH desired and tags with If-Match, 412 on a stale etag, reported is refused, PUT replaces", async (t) => {
  const h = await harness(t);
  assert.equal((await h.request("GET", "/twins/nope")).statusCode, 404);
  await h.request("PUT", "/devices/d1", { deviceId: "d1" });
  const twin = (await h.request("GET", "/twins/d1?api-version=2021-04-12")).json();
  assert.equal(twin.deviceId, "d1");
  assert.ok(twin.etag);
  assert.equal(twin.properties.desired.$version, 1);

  const patched = await h.request("PATCH", "/twins/d1", { tags: { site: "a" }, properties: { desired: { rate: 5, nested: { a: 1, b: 2 } } } }, { "if-match": `"${twin.etag}"` });
  assert.equal(patched.statusCode, 200, patched.body);
  const p = patched.json();
  assert.equal(p.properties.desired.rate, 5);
  assert.equal(p.properties.desired.$version, 2);
  assert.deepEqual(p.tags, { site: "a" });
  assert.notEqual(p.etag, twin.etag);
  assert.equal((await h.hub.getTwin("d1")).properties.desired["rate"], 5);

  const stale = await h.request("PATCH", "/twins/d1", { properties: { desired: { rate: 6 } } }, { "if-match": `"${twin.etag}"` });
  assert.equal(stale.statusCode, 412);
  const reported = await h.request("PATCH", "/twins/d1", { properties: { reported: { x: 1 } } });
  assert.equal(reported.statusCode, 400);
  assert.match(errorOf(reported).text, /twin\.properties\.reported/);
  const arr = await h.request("PATCH", "/twins/d1", { properties: { desired: { list: [1] } } });
  assert.equal(arr.statusCode, 400);
  assert.match(errorOf(arr).text, /twin\.properties\.desired\.list/);

  const removed = (await h.request("PATCH", "/twins/d1", { properties: { desired: { rate: null } } })).json();
  assert.equal("rate" in removed.properties.desired, false, "null deletes");
  const replaced = (await h.request("PUT", "/twins/d1", { tags: { zone: "z" }, properties: { desired: { nested: { a: 9 } } } })).json();
  assert.deepEqual(replaced.tags, { zone: "z" });
  assert.deepEqual(replaced.properties.desired.nested, { a: 9 });

  await h.request("PUT", "/devices/d1/modules/m1", { deviceId: "d1", moduleId: "m1" });
  const mt = await h.request("PATCH", "/twins/d1/modules/m1", { properties: { desired: { on: true } } });
  assert.equal(mt.statusCode, 200, mt.body);
  assert.equal(mt.json().moduleId, "m1");
  assert.equal(mt.json().properties.desired.on, true);
});

test("methods: 404 DeviceNotOnline, the device's answer through a fake link, 504 on timeout, 400 without a name", async (t) => {
  const h = await harness(t);
  await h.request("PUT", "/devices/d1", { deviceId: "d1" });
  assert.equal((await h.request("POST", "/twins/ghost/methods", { methodName: "x" })).statusCode, 404);
  const offline = await h.request("POST", "/twins/d1/methods", { methodName: "reboot", payload: {}, responseTimeoutInSeconds: 5 });
  assert.equal(offline.statusCode, 404);
  assert.equal(errorOf(offline).code, "DeviceNotOnline");

  const seen: unknown[] = [];
  const attachment = h.hub.attach(fakeDeviceLink("d1", async (req) => {
    seen.push(req);
    if (req.methodName === "hang") return new Promise(() => undefined);
    return { status: 201, payload: { echoed: req.payload } };
  }));
  t.after(() => attachment.detach());
  const ok = await h.request("POST", "/twins/d1/methods?api-version=2021-04-12", { methodName: "reboot", payload: { delay: 3 }, responseTimeoutInSeconds: 5 });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.deepEqual(ok.json(), { status: 201, payload: { echoed: { delay: 3 } } });
  assert.deepEqual(seen[0], { methodName: "reboot", payload: { delay: 3 }, responseTimeoutInSeconds: 5 });

  const slow = await h.request("POST", "/twins/d1/methods", { methodName: "hang", responseTimeoutInSeconds: 1 });
  assert.equal(slow.statusCode, 504);
  assert.equal(errorOf(slow).code, "GatewayTimeout");
  const noName = await h.request("POST", "/twins/d1/methods", { payload: 1 });
  assert.equal(noName.statusCode, 400);
  assert.match(errorOf(noName).text, /methodName/);
  const badTimeout = await h.request("POST", "/twins/d1/methods", { methodName: "x", responseTimeoutInSeconds: 301 });
  assert.equal(badTimeout.statusCode, 400);
  assert.match(errorOf(badTimeout).text, /responseTimeoutInSeconds/);
});

test("C2D convenience: the body and iothub-* headers are queued for the device", async (t) => {
  const h = await harness(t);
  await h.request("PUT", "/devices/d1", { deviceId: "d1" });
  const res = await h.request("POST", "/devices/d1/messages/deviceBound", Buffer.from([1, 2, 3]), {
    "content-type": "application/octet-stream", "iothub-messageid": "c2d-1", "iothub-app-color": "red",
  });
  assert.equal(res.statusCode, 200, res.body);
  assert.ok(res.json().id);
  const q = h.store.queue("c2d:d1");
  assert.equal(q.depth(), 1);
  const [lease] = await q.lease(1);
  assert.deepEqual(lease!.message.body, Buffer.from([1, 2, 3]));
  assert.equal(lease!.message.systemProperties.messageId, "c2d-1");
  assert.equal(lease!.message.systemProperties.contentType, "application/octet-stream");
  assert.deepEqual(lease!.message.properties, { color: "red" });
  assert.equal((await h.request("POST", "/devices/ghost/messages/deviceBound", Buffer.from("x"))).statusCode, 404);
  const big = await h.request("POST", "/devices/d1/messages/deviceBound", Buffer.alloc(64 * 1024 + 1));
  assert.equal(big.statusCode, 413);
});

test("a stopped plugin's routes answer 503 in IoT Hub's shape", async (t) => {
  const h = await harness(t);
  h.running.value = false;
  const res = await h.request("GET", "/devices");
  assert.equal(res.statusCode, 503);
  assert.equal(errorOf(res).code, "ServiceUnavailable");
});

test("a body over the front's limit is refused before the handler, still in IoT Hub's shape", async (t) => {
  const h = await harness(t);
  const res = await h.request("PUT", "/devices/d1", Buffer.alloc(2 * 1024 * 1024, 0x20), { "content-type": "application/json" });
  assert.equal(res.statusCode, 413);
  assert.equal(errorOf(res).code, "MessageTooLarge");
});
