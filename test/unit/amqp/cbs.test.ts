import assert from "node:assert/strict";
import { test } from "node:test";
import rhea from "rhea";
import { generateKey, IdentityRegistry, signSas, silentLogger } from "../../../core/index.js";
import { parsePutToken, putTokenReply, SAS_TOKEN_TYPE, verifyPutToken } from "../../../plugins/amqp/cbs.js";
import { splitPlain, verifyPlain } from "../../../plugins/amqp/sasl.js";

function putToken(token: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    message_id: "req-1", to: "$cbs", reply_to: "cbs",
    application_properties: { operation: "put-token", type: SAS_TOKEN_TYPE, name: "hub%2Fdevices%2Fd1", ...extra },
    body: token,
  };
}

test("put-token parses as the SDK sends it, and the reply echoes the message id with status-code", () => {
  const p = parsePutToken(putToken("SharedAccessSignature sr=a&sig=b&se=1"));
  assert.ok(p.ok);
  assert.equal(p.request.name, "hub%2Fdevices%2Fd1");
  const reply = putTokenReply("req-1", 200, "OK");
  assert.equal(reply.correlation_id, "req-1");
  assert.deepEqual(reply.application_properties, { "status-code": 200, "status-description": "OK" });
  // A 16-byte uuid message id goes back as the same uuid.
  const uuid = rhea.string_to_uuid("8e9a4bd0-2e3b-4f61-9a5c-0c1d2e3f4a5b");
  assert.equal(putTokenReply(uuid, 401, "no").correlation_id, uuid);
});

test("other operations, token types and bodies are 400s with a description", () => {
  for (const msg of [putToken("x", { operation: "get-token" }), putToken("x", { type: "jwt" }), putToken("not a sas")]) {
    const p = parsePutToken(msg);
    assert.equal(p.ok, false);
    if (!p.ok) {
      assert.equal(p.status, 400);
      assert.equal(p.messageId, "req-1");
    }
  }
});

async function registry(): Promise<{ reg: IdentityRegistry; key: string; owner: string }> {
  const key = generateKey();
  const owner = generateKey();
  const store = new Map<string, unknown>();
  const kv = {
    get: async (k: string) => store.get(k), put: async (k: string, v: unknown) => void store.set(k, v), del: async (k: string) => void store.delete(k),
    entries: async function* () { yield* store.entries(); },
  };
  const reg = new IdentityRegistry({ self: "gw", hubName: "hub", hostnames: ["localhost"], kv: kv as never, policies: [{ name: "iothubowner", primaryKey: owner, rights: ["RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"] }], logger: silentLogger() } as never);
  await reg.load();
  await reg.put({ id: "d1", deviceId: "d1", status: "enabled", auth: { type: "sas", primaryKey: key, secondaryKey: generateKey() }, edge: false });
  return { reg, key, owner };
}

test("verifyPutToken: a good device token, a bad signature, an expired token, a service token", async () => {
  const { reg, key, owner } = await registry();
  const now = Math.floor(Date.now() / 1000);
  const good = signSas({ resource: "hub/devices/d1", key, expirySecs: now + 600 });
  const r = verifyPutToken(reg, { token: good, name: "", type: SAS_TOKEN_TYPE, messageId: 1 });
  assert.ok(r.ok);
  assert.equal(r.principal.id, "d1");
  const bad = signSas({ resource: "hub/devices/d1", key: generateKey(), expirySecs: now + 600 });
  const rb = verifyPutToken(reg, { token: bad, name: "", type: SAS_TOKEN_TYPE, messageId: 1 });
  assert.equal(rb.ok, false);
  const expired = signSas({ resource: "hub/devices/d1", key, expirySecs: now - 3600 });
  const re = verifyPutToken(reg, { token: expired, name: "", type: SAS_TOKEN_TYPE, messageId: 1 });
  assert.ok(!re.ok && re.reason === "expired");
  const service = signSas({ resource: "hub", key: owner, expirySecs: now + 600, keyName: "iothubowner" });
  const rs = verifyPutToken(reg, { token: service, name: "", type: SAS_TOKEN_TYPE, messageId: 1 });
  assert.ok(rs.ok, JSON.stringify(rs));
  assert.equal(rs.principal.policy, "iothubowner");
});

test("SASL PLAIN: {device}@sas.{hub} with the token as password", async () => {
  const { reg, key } = await registry();
  const token = signSas({ resource: "hub/devices/d1", key, expirySecs: Math.floor(Date.now() / 1000) + 600 });
  assert.deepEqual(splitPlain(Buffer.from(`\0d1@sas.hub\0${token}`)), { username: "d1@sas.hub", password: token });
  assert.equal(verifyPlain(reg, "d1@sas.hub", token).ok, true);
  assert.equal(verifyPlain(reg, "d2@sas.hub", token).ok, false);
  assert.equal(verifyPlain(reg, "d1", token).ok, false);
});
