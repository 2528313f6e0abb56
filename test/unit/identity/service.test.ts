// Service-side tokens (root service API): `skn` names a shared access policy; audience is the hub name or a gateway host name.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKey, IdentityRegistry, signSas, type AccessPolicy, type AuthResult } from "../../../core/identity/index.js";
import { isStrataError } from "../../../core/errors.js";
import { silentLogger } from "../../../core/log.js";
import { MemoryKv } from "./memory-kv.js";
import { deviceToken, GATEWAY_HOST, HUB, keysOf, makeRegistry, NOW, NOW_S, sasDevice } from "./setup.js";

const owner: AccessPolicy = { name: "iothubowner", primaryKey: generateKey(), secondaryKey: generateKey(), rights: [] };
const registryRead: AccessPolicy = { name: "registryRead", primaryKey: generateKey(), rights: ["RegistryRead"] };

function refusal(r: AuthResult): string {
  assert.equal(r.ok, false, "expected a refusal");
  return r.ok ? "" : r.reason;
}

function serviceToken(policy: string, key: string, opts: { resource?: string; se?: number } = {}): string {
  return signSas({ resource: opts.resource ?? HUB, key, expirySecs: opts.se ?? NOW_S + 3600, keyName: policy });
}

test("verifyService: iothubowner has every right (primary and secondary key)", async () => {
  const { registry } = await makeRegistry([], { policies: [owner, registryRead] });
  for (const right of ["RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"] as const) {
    const r = registry.verifyService(serviceToken("iothubowner", owner.primaryKey), right, NOW);
    assert.equal(r.ok, true, right);
  }
  const r = registry.verifyService(serviceToken("iothubowner", owner.secondaryKey!), "ServiceConnect", NOW);
  assert.deepEqual(r, {
    ok: true,
    principal: { id: "$policy:iothubowner", deviceId: "$policy:iothubowner", method: "sas", policy: "iothubowner", expiresAt: NOW_S + 3600 },
  });
});

test("verifyService: sr may carry /devices/… after the hub name; the hub name is case-insensitive", async () => {
  const { registry } = await makeRegistry([], { policies: [owner] });
  assert.equal(registry.verifyService(serviceToken("iothubowner", owner.primaryKey, { resource: `${HUB}/devices/d1` }), "RegistryRead", NOW).ok, true);
  assert.equal(registry.verifyService(serviceToken("iothubowner", owner.primaryKey, { resource: HUB.toUpperCase() }), "RegistryRead", NOW).ok, true);
});

test("verifyService: a policy without the right is refused as insufficient-rights", async () => {
  const { registry } = await makeRegistry([], { policies: [owner, registryRead] });
  assert.equal(registry.verifyService(serviceToken("registryRead", registryRead.primaryKey), "RegistryRead", NOW).ok, true);
  assert.equal(refusal(registry.verifyService(serviceToken("registryRead", registryRead.primaryKey), "RegistryWrite", NOW)), "insufficient-rights");
});

test("verifyService: a device token is refused", async () => {
  const d1 = sasDevice("d1");
  const { registry } = await makeRegistry([d1], { policies: [owner] });
  const r = registry.verifyService(deviceToken("d1", keysOf(d1).primaryKey), "ServiceConnect", NOW);
  assert.equal(refusal(r), "wrong-identity");
  assert.match(r.ok ? "" : r.detail, /skn/);
});

test("verifyService: the wrong policy key, an unknown policy, another audience, expiry and malformed tokens are refused", async () => {
  const { registry } = await makeRegistry([], { policies: [owner, registryRead] });
  assert.equal(refusal(registry.verifyService(serviceToken("iothubowner", registryRead.primaryKey), "RegistryRead", NOW)), "bad-signature");
  assert.equal(refusal(registry.verifyService(serviceToken("iothubowner", generateKey()), "RegistryRead", NOW)), "bad-signature");
  assert.equal(refusal(registry.verifyService(serviceToken("nobody", owner.primaryKey), "RegistryRead", NOW)), "unknown-identity");
  // the service audience is the hub name or one of this gateway's host names (what the SDK connects to)
  assert.equal(registry.verifyService(serviceToken("iothubowner", owner.primaryKey, { resource: GATEWAY_HOST }), "RegistryRead", NOW).ok, true);
  assert.equal(refusal(registry.verifyService(serviceToken("iothubowner", owner.primaryKey, { resource: "elsewhere.example" }), "RegistryRead", NOW)), "wrong-audience");
  assert.equal(refusal(registry.verifyService(serviceToken("iothubowner", owner.primaryKey, { se: NOW_S - 301 }), "RegistryRead", NOW)), "expired");
  assert.equal(registry.verifyService(serviceToken("iothubowner", owner.primaryKey, { se: NOW_S - 299 }), "RegistryRead", NOW).ok, true);
  assert.equal(refusal(registry.verifyService("SharedAccessSignature skn=iothubowner&se=1", "RegistryRead", NOW)), "malformed");
});

test("verifyService: policies kept in a Kv are loaded, and putPolicy writes through", async () => {
  const policyKv = new MemoryKv<AccessPolicy>();
  await policyKv.put("iothubowner", owner);
  const registry = new IdentityRegistry({ self: "root", hubName: HUB, hostnames: [], kv: new MemoryKv(), policies: policyKv, logger: silentLogger() });
  assert.equal(refusal(registry.verifyService(serviceToken("iothubowner", owner.primaryKey), "RegistryRead", NOW)), "unknown-identity", "before load");
  await registry.load();
  assert.equal(registry.verifyService(serviceToken("iothubowner", owner.primaryKey), "RegistryRead", NOW).ok, true);
  const rotated = { ...owner, primaryKey: generateKey() };
  await registry.putPolicy(rotated);
  assert.equal(policyKv.data.get("iothubowner")?.primaryKey, rotated.primaryKey);
  assert.equal(refusal(registry.verifyService(serviceToken("iothubowner", owner.primaryKey), "RegistryRead", NOW)), "bad-signature");
  assert.equal(registry.verifyService(serviceToken("iothubowner", rotated.primaryKey), "RegistryRead", NOW).ok, true);
});

test("policies: a bad policy is refused with STRATA_IDENTITY_INVALID naming the field", () => {
  const base = { self: "root", hubName: HUB, hostnames: [], kv: new MemoryKv<never>(), logger: silentLogger() };
  assert.throws(
    () => new IdentityRegistry({ ...base, policies: [{ ...owner, primaryKey: "not base64!" }] }),
    (e) => isStrataError(e, "STRATA_IDENTITY_INVALID") && /primaryKey/.test(e.message),
  );
  assert.throws(
    () => new IdentityRegistry({ ...base, policies: [{ ...owner, rights: ["Everything" as never] }] }),
    (e) => isStrataError(e, "STRATA_IDENTITY_INVALID") && /rights/.test(e.message),
  );
});
