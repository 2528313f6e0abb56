// SAS tokens as IoT Hub / edgeHub make and check them (shared/reference/iot-hub-wire.md, "SAS token").
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  deviceConnectionString,
  generateKey,
  parseSasToken,
  serviceConnectionString,
  signSas,
  type AuthResult,
} from "../../../core/identity/index.js";
import { isStrataError } from "../../../core/errors.js";
import { deviceToken, edge, GATEWAY_HOST, HUB, keysOf, makeRegistry, NOW, NOW_S, sasDevice } from "./setup.js";

function refusal(r: AuthResult): string {
  assert.equal(r.ok, false, "expected a refusal");
  return r.ok ? "" : r.reason;
}

// --- helpers --------------------------------------------------------------------------------------------

test("signSas: sr and sig URL-encoded, sig = base64(HMAC-SHA256(key, sr-as-sent \\n se))", () => {
  const key = generateKey();
  const token = signSas({ resource: `${HUB}/devices/d1`, key, expirySecs: 1795390976 });
  const sr = encodeURIComponent(`${HUB}/devices/d1`);
  const sig = createHmac("sha256", Buffer.from(key, "base64")).update(`${sr}\n1795390976`).digest("base64");
  assert.equal(token, `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=1795390976`);
});

test("signSas: keyName becomes skn; a fractional expiry is refused", () => {
  const token = signSas({ resource: HUB, key: generateKey(), expirySecs: 100, keyName: "iothubowner" });
  assert.match(token, /&se=100&skn=iothubowner$/);
  assert.throws(() => signSas({ resource: HUB, key: generateKey(), expirySecs: 1.5 }), (e) => isStrataError(e, "STRATA_IDENTITY_SAS_EXPIRY"));
});

test("generateKey: 32 random bytes in base64", () => {
  const a = generateKey();
  assert.equal(Buffer.from(a, "base64").length, 32);
  assert.notEqual(a, generateKey());
});

test("connection strings in the SDKs' shape", () => {
  assert.equal(
    deviceConnectionString({ hub: HUB, deviceId: "d1", moduleId: "m1", key: "S0VZ", gatewayHostName: "localhost:18883" }),
    `HostName=${HUB};DeviceId=d1;ModuleId=m1;SharedAccessKey=S0VZ;GatewayHostName=localhost:18883`,
  );
  assert.equal(deviceConnectionString({ hub: HUB, deviceId: "d1", key: "S0VZ" }), `HostName=${HUB};DeviceId=d1;SharedAccessKey=S0VZ`);
  assert.equal(
    serviceConnectionString({ hub: HUB, policy: "iothubowner", key: "S0VZ" }),
    `HostName=${HUB};SharedAccessKeyName=iothubowner;SharedAccessKey=S0VZ`,
  );
});

test("parseSasToken: fields in any order, sr and sig kept as sent, skn decoded", () => {
  const t = parseSasToken("SharedAccessSignature se=42&skn=my%20policy&sig=YWJj%3D&sr=hub%2Fdevices%2Fd1");
  assert.deepEqual(t, { sr: "hub%2Fdevices%2Fd1", sig: "YWJj%3D", se: 42, skn: "my policy" });
});

test("parseSasToken: malformed tokens throw STRATA_IDENTITY_SAS_MALFORMED naming the field", () => {
  const cases: Array<[string, RegExp]> = [
    ["sr=a&sig=b&se=1", /starts with/],
    ["SharedAccessSignature sig=b&se=1", /sr is missing/],
    ["SharedAccessSignature sr=a&se=1", /sig is missing/],
    ["SharedAccessSignature sr=a&sig=b", /se is missing/],
    ["SharedAccessSignature sr=a&sig=b&se=", /se is missing/],
    ["SharedAccessSignature sr=a&sig=b&se=12abc", /se must be unix seconds/],
    ["SharedAccessSignature sr=a&sig=b&se=-5", /se must be unix seconds/],
    ["SharedAccessSignature sr=a&sr=c&sig=b&se=1", /sr appears twice/],
    ["SharedAccessSignature sr=a&sig&se=1", /key=value/],
  ];
  for (const [token, message] of cases) {
    assert.throws(() => parseSasToken(token), (e) => isStrataError(e, "STRATA_IDENTITY_SAS_MALFORMED") && message.test(e.message), token);
  }
});

// --- verifySas ------------------------------------------------------------------------------------------

test("verifySas: a device token signed with the primary key is accepted", async () => {
  const d1 = sasDevice("d1");
  const { registry } = await makeRegistry([d1]);
  const r = registry.verifySas("d1", deviceToken("d1", keysOf(d1).primaryKey), NOW);
  assert.deepEqual(r, { ok: true, principal: { id: "d1", deviceId: "d1", method: "sas", expiresAt: NOW_S + 3600 } });
});

test("verifySas: the secondary key is accepted too", async () => {
  const d1 = sasDevice("d1");
  const { registry } = await makeRegistry([d1]);
  assert.equal(registry.verifySas("d1", deviceToken("d1", keysOf(d1).secondaryKey), NOW).ok, true);
});

test("verifySas: a token signed with another key is refused as bad-signature, without leaking the key or sig", async () => {
  const d1 = sasDevice("d1");
  const { registry } = await makeRegistry([d1]);
  const token = deviceToken("d1", generateKey());
  const r = registry.verifySas("d1", token, NOW);
  assert.equal(refusal(r), "bad-signature");
  const sig = decodeURIComponent(parseSasToken(token).sig);
  assert.ok(!r.ok && !r.detail.includes(sig) && !r.detail.includes(keysOf(d1).primaryKey));
});

test("verifySas: fields in another order verify (the SDKs differ)", async () => {
  const d1 = sasDevice("d1");
  const { registry } = await makeRegistry([d1]);
  const t = parseSasToken(deviceToken("d1", keysOf(d1).primaryKey));
  assert.equal(registry.verifySas("d1", `SharedAccessSignature se=${t.se}&sig=${t.sig}&sr=${t.sr}`, NOW).ok, true);
});

test("verifySas: the signature covers sr exactly as sent (URL-encoded), not decoded", async () => {
  const d1 = sasDevice("d1");
  const { registry } = await makeRegistry([d1]);
  const key = keysOf(d1).primaryKey;
  const se = NOW_S + 60;
  const overDecoded = createHmac("sha256", Buffer.from(key, "base64")).update(`${HUB}/devices/d1\n${se}`).digest("base64");
  const sentEncoded = `SharedAccessSignature sr=${encodeURIComponent(`${HUB}/devices/d1`)}&sig=${encodeURIComponent(overDecoded)}&se=${se}`;
  assert.equal(refusal(registry.verifySas("d1", sentEncoded, NOW)), "bad-signature");
  // The same bytes sent unencoded are hashed as sent, so they verify.
  const sentRaw = `SharedAccessSignature sr=${HUB}/devices/d1&sig=${encodeURIComponent(overDecoded)}&se=${se}`;
  assert.equal(registry.verifySas("d1", sentRaw, NOW).ok, true);
});

test("verifySas: a module with its own key", async () => {
  const dev = sasDevice("d1");
  const mod = sasDevice("d1/m1");
  const { registry } = await makeRegistry([dev, mod]);
  const r = registry.verifySas("d1/m1", deviceToken("d1/m1", keysOf(mod).primaryKey), NOW);
  assert.deepEqual(r, { ok: true, principal: { id: "d1/m1", deviceId: "d1", moduleId: "m1", method: "sas", expiresAt: NOW_S + 3600 } });
});

test("verifySas: a module token signed with its device's key (primary or secondary) is accepted", async () => {
  const dev = sasDevice("d1");
  const mod = sasDevice("d1/m1");
  const { registry } = await makeRegistry([dev, mod]);
  assert.equal(registry.verifySas("d1/m1", deviceToken("d1/m1", keysOf(dev).primaryKey), NOW).ok, true);
  assert.equal(registry.verifySas("d1/m1", deviceToken("d1/m1", keysOf(dev).secondaryKey), NOW).ok, true);
});

test("verifySas: a device token signed with one of its module's keys is refused", async () => {
  const dev = sasDevice("d1");
  const mod = sasDevice("d1/m1");
  const { registry } = await makeRegistry([dev, mod]);
  assert.equal(refusal(registry.verifySas("d1", deviceToken("d1", keysOf(mod).primaryKey), NOW)), "bad-signature");
});

test("verifySas: expired beyond the 5 min skew is refused; within the skew it is accepted", async () => {
  const d1 = sasDevice("d1");
  const { registry } = await makeRegistry([d1]);
  const key = keysOf(d1).primaryKey;
  assert.equal(registry.verifySas("d1", deviceToken("d1", key, { se: NOW_S - 299 }), NOW).ok, true);
  assert.equal(registry.verifySas("d1", deviceToken("d1", key, { se: NOW_S - 300 }), NOW).ok, true);
  assert.equal(refusal(registry.verifySas("d1", deviceToken("d1", key, { se: NOW_S - 301 }), NOW)), "expired");
  assert.equal(refusal(registry.verifySas("d1", deviceToken("d1", key, { se: NOW_S - 86400 }), NOW)), "expired");
});

test("verifySas: now defaults to the wall clock", async () => {
  const d1 = sasDevice("d1");
  const { registry } = await makeRegistry([d1]);
  const key = keysOf(d1).primaryKey;
  const wall = Math.floor(Date.now() / 1000);
  assert.equal(registry.verifySas("d1", deviceToken("d1", key, { se: wall + 60 })).ok, true);
  assert.equal(refusal(registry.verifySas("d1", deviceToken("d1", key, { se: wall - 600 }))), "expired");
});

test("verifySas: audience must be the hub or a gateway host name, case-insensitively", async () => {
  const d1 = sasDevice("d1");
  const { registry } = await makeRegistry([d1]);
  const key = keysOf(d1).primaryKey;
  assert.equal(registry.verifySas("d1", deviceToken("d1", key, { host: GATEWAY_HOST }), NOW).ok, true);
  assert.equal(registry.verifySas("d1", deviceToken("d1", key, { host: GATEWAY_HOST.toUpperCase() }), NOW).ok, true);
  assert.equal(registry.verifySas("d1", deviceToken("d1", key, { host: HUB.toUpperCase() }), NOW).ok, true);
  assert.equal(refusal(registry.verifySas("d1", deviceToken("d1", key, { host: "otherhub.azure-devices.net" }), NOW)), "wrong-audience");
});

test("verifySas: a token for another device is refused as wrong-identity", async () => {
  const d1 = sasDevice("d1");
  const d2 = sasDevice("d2");
  const { registry } = await makeRegistry([d1, d2]);
  const r = registry.verifySas("d1", deviceToken("d2", keysOf(d2).primaryKey), NOW);
  assert.equal(refusal(r), "wrong-identity");
  // and a token for d2 signed with d1's key does not pass as d2
  assert.equal(refusal(registry.verifySas("d2", deviceToken("d2", keysOf(d1).primaryKey), NOW)), "bad-signature");
  // a device token does not pass as its module, nor a module token as its device
  assert.equal(refusal(registry.verifySas("d1/m1", deviceToken("d1", keysOf(d1).primaryKey), NOW)), "wrong-identity");
  assert.equal(refusal(registry.verifySas("d1", deviceToken("d1/m1", keysOf(d1).primaryKey), NOW)), "wrong-identity");
});

test("verifySas: malformed tokens are refused as malformed", async () => {
  const d1 = sasDevice("d1");
  const { registry } = await makeRegistry([d1]);
  const good = parseSasToken(deviceToken("d1", keysOf(d1).primaryKey));
  const cases = [
    "",
    "Bearer abc",
    `SharedAccessSignature sr=${good.sr}&se=${good.se}`,
    `SharedAccessSignature sig=${good.sig}&se=${good.se}`,
    `SharedAccessSignature sr=${good.sr}&sig=${good.sig}`,
    `SharedAccessSignature sr=${good.sr}&sig=${good.sig}&se=soon`,
    `SharedAccessSignature sr=${good.sr}&sig=not*base64!&se=${good.se}`,
    `SharedAccessSignature sr=${good.sr}&sig=%E0%A4%A&se=${good.se}`,
    `SharedAccessSignature sr=${good.sr}&sig=YWJj&se=${good.se}&se=${good.se}`,
    `SharedAccessSignature sr=${encodeURIComponent(`${HUB}/things/d1`)}&sig=${good.sig}&se=${good.se}`,
    `SharedAccessSignature sr=${encodeURIComponent(HUB)}&sig=${good.sig}&se=${good.se}`,
    `SharedAccessSignature sr=%ZZ&sig=${good.sig}&se=${good.se}`,
  ];
  for (const token of cases) assert.equal(refusal(registry.verifySas("d1", token, NOW)), "malformed", token);
});

test("verifySas: a well-formed base64 signature of the wrong length is a bad signature", async () => {
  const d1 = sasDevice("d1");
  const { registry } = await makeRegistry([d1]);
  const good = parseSasToken(deviceToken("d1", keysOf(d1).primaryKey));
  const r = registry.verifySas("d1", `SharedAccessSignature sr=${good.sr}&sig=YWJj&se=${good.se}`, NOW);
  assert.equal(refusal(r), "bad-signature");
});

test("verifySas: unknown and disabled identities are refused", async () => {
  const d1 = sasDevice("d1", { status: "disabled" });
  const { registry } = await makeRegistry([d1]);
  assert.equal(refusal(registry.verifySas("d1", deviceToken("d1", keysOf(d1).primaryKey), NOW)), "disabled");
  assert.equal(refusal(registry.verifySas("ghost", deviceToken("ghost", generateKey()), NOW)), "unknown-identity");
});

test("verifySas: a module of a disabled device is refused", async () => {
  const dev = sasDevice("d1", { status: "disabled" });
  const mod = sasDevice("d1/m1");
  const { registry } = await makeRegistry([dev, mod]);
  assert.equal(refusal(registry.verifySas("d1/m1", deviceToken("d1/m1", keysOf(mod).primaryKey), NOW)), "disabled");
});

test("verifySas: an X.509 identity cannot use a SAS token", async () => {
  const d1 = sasDevice("d1", { auth: { type: "certificateAuthority" } });
  const { registry } = await makeRegistry([d1]);
  const r = registry.verifySas("d1", deviceToken("d1", generateKey()), NOW);
  assert.equal(refusal(r), "bad-signature");
  assert.match(r.ok ? "" : r.detail, /X\.509/);
});

test("verifySas: key rotation — old-key tokens stop verifying as soon as put resolves", async () => {
  const d1 = sasDevice("d1");
  const { registry } = await makeRegistry([d1, edge("gw1")]);
  const oldToken = deviceToken("d1", keysOf(d1).primaryKey);
  const oldSecondary = deviceToken("d1", keysOf(d1).secondaryKey);
  assert.equal(registry.verifySas("d1", oldToken, NOW).ok, true);
  const fresh = { primaryKey: generateKey(), secondaryKey: generateKey() };
  await registry.put({ ...d1, auth: { type: "sas", ...fresh } });
  assert.equal(refusal(registry.verifySas("d1", oldToken, NOW)), "bad-signature");
  assert.equal(refusal(registry.verifySas("d1", oldSecondary, NOW)), "bad-signature");
  assert.equal(registry.verifySas("d1", deviceToken("d1", fresh.primaryKey), NOW).ok, true);
  assert.equal(registry.verifySas("d1", deviceToken("d1", fresh.secondaryKey), NOW).ok, true);
});

test("identityFromSasToken: names the device or module a token is for (AMQP CBS), or undefined", async () => {
  const { identityFromSasToken } = await import("../../../core/identity/index.js");
  const key = generateKey();
  assert.deepEqual(identityFromSasToken(deviceToken("d1", key)), { id: "d1", deviceId: "d1", host: HUB });
  assert.deepEqual(identityFromSasToken(deviceToken("d1/m1", key)), { id: "d1/m1", deviceId: "d1", moduleId: "m1", host: HUB });
  assert.equal(identityFromSasToken(signSas({ resource: HUB, key, expirySecs: 1, keyName: "iothubowner" })), undefined);
  assert.equal(identityFromSasToken("garbage"), undefined);
});
