// X.509 client certificates: thumbprint and CA authentication, devices only (as edgeHub).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { IdentityRegistry, type AuthResult } from "../../../core/identity/index.js";
import { isStrataError } from "../../../core/errors.js";
import { silentLogger } from "../../../core/log.js";
import { makeCert, OTHER_KEYS } from "./certs.js";
import { MemoryKv } from "./memory-kv.js";
import { HUB, makeRegistry, sasDevice } from "./setup.js";

const DAY = 86_400_000;
const root = makeCert({ cn: "Strata Test Root CA", ca: true });
const intermediate = makeCert({ cn: "Strata Test Intermediate CA", ca: true, issuer: root });
const otherRoot = makeCert({ cn: "Some Other CA", ca: true });

function refusal(r: AuthResult): string {
  assert.equal(r.ok, false, "expected a refusal");
  return r.ok ? "" : r.reason;
}

function colonHex(buf: Buffer): string {
  return buf.toString("hex").toUpperCase().match(/../g)!.join(":");
}

// --- thumbprint -----------------------------------------------------------------------------------------

test("thumbprint: the primary (SHA-1, upper case with colons) matches", async () => {
  const leaf = makeCert({ cn: "d1" });
  const primary = colonHex(createHash("sha1").update(leaf.der).digest());
  const { registry } = await makeRegistry([sasDevice("d1", { auth: { type: "selfSigned", primaryThumbprint: primary } })]);
  const r = registry.verifyCertificate("d1", [leaf.der]);
  assert.equal(r.ok, true);
  assert.equal(r.ok && r.principal.method, "x509-thumbprint");
  assert.equal(r.ok && r.principal.expiresAt, Math.floor(leaf.cert.validity.notAfter.getTime() / 1000));
});

test("thumbprint: the secondary (SHA-256) matches; the CN does not matter", async () => {
  const leaf = makeCert({ cn: "whatever" });
  const secondary = createHash("sha256").update(leaf.der).digest("hex");
  const auth = { type: "selfSigned" as const, primaryThumbprint: "ab".repeat(20), secondaryThumbprint: secondary };
  const { registry } = await makeRegistry([sasDevice("d1", { auth })]);
  assert.equal(registry.verifyCertificate("d1", [leaf.der]).ok, true);
});

test("thumbprint: a certificate matching neither thumbprint is refused", async () => {
  const registered = makeCert({ cn: "d1" });
  const presented = makeCert({ cn: "d1" });
  const primary = createHash("sha1").update(registered.der).digest("hex");
  const { registry } = await makeRegistry([sasDevice("d1", { auth: { type: "selfSigned", primaryThumbprint: primary } })]);
  assert.equal(refusal(registry.verifyCertificate("d1", [presented.der])), "bad-certificate");
});

test("thumbprint: an expired or not-yet-valid certificate is refused even when the thumbprint matches", async () => {
  const expired = makeCert({ cn: "d1", notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
  const future = makeCert({ cn: "d2", notBefore: new Date(Date.now() + DAY) });
  const tp = (c: { der: Buffer }) => createHash("sha1").update(c.der).digest("hex");
  const { registry } = await makeRegistry([
    sasDevice("d1", { auth: { type: "selfSigned", primaryThumbprint: tp(expired) } }),
    sasDevice("d2", { auth: { type: "selfSigned", primaryThumbprint: tp(future) } }),
  ]);
  const r = registry.verifyCertificate("d1", [expired.der]);
  assert.equal(refusal(r), "bad-certificate");
  assert.match(r.ok ? "" : r.detail, /expired/);
  assert.equal(refusal(registry.verifyCertificate("d2", [future.der])), "bad-certificate");
});

// --- CA ---------------------------------------------------------------------------------------------------

async function caRegistry() {
  return makeRegistry(
    [sasDevice("d1", { auth: { type: "certificateAuthority" } }), sasDevice("d2", { auth: { type: "certificateAuthority" } })],
    { trustedCas: [root.pem] },
  );
}

test("CA: a leaf with CN = device id issued by the trusted root is accepted", async () => {
  const { registry } = await caRegistry();
  const leaf = makeCert({ cn: "d1", issuer: root });
  const r = registry.verifyCertificate("d1", [leaf.der]);
  assert.equal(r.ok, true);
  assert.equal(r.ok && r.principal.method, "x509-ca");
});

test("CA: a leaf issued by a presented intermediate under the trusted root is accepted", async () => {
  const { registry } = await caRegistry();
  const leaf = makeCert({ cn: "d1", issuer: intermediate });
  assert.equal(registry.verifyCertificate("d1", [leaf.der, intermediate.der]).ok, true);
  // without the intermediate the chain does not reach the root
  assert.equal(refusal(registry.verifyCertificate("d1", [leaf.der])), "bad-certificate");
});

test("CA: a leaf under an intermediate the TLS handshake verified (node dropped the intermediate) is accepted; CN, validity and thumbprint still checked", async () => {
  const { registry } = await caRegistry();
  const leaf = makeCert({ cn: "d1", issuer: intermediate });
  const r = registry.verifyCertificate("d1", [leaf.der], undefined, { tlsVerified: true });
  assert.equal(r.ok && r.principal.method, "x509-ca");
  assert.equal(refusal(registry.verifyCertificate("d1", [leaf.der], undefined, { tlsVerified: false })), "bad-certificate");
  // the handshake's verdict is about the chain only: a verified certificate for d1 does not make its holder d2
  assert.equal(refusal(registry.verifyCertificate("d2", [leaf.der], undefined, { tlsVerified: true })), "bad-certificate");
  const expired = makeCert({ cn: "d1", issuer: intermediate, notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
  assert.equal(refusal(registry.verifyCertificate("d1", [expired.der], undefined, { tlsVerified: true })), "bad-certificate");
  const { registry: byThumbprint } = await makeRegistry([sasDevice("t1", { auth: { type: "selfSigned", primaryThumbprint: "00".repeat(20) } })]);
  assert.equal(refusal(byThumbprint.verifyCertificate("t1", [makeCert({ cn: "t1", issuer: root }).der], undefined, { tlsVerified: true })), "bad-certificate");
});

test("CA: a leaf issued by another CA is refused", async () => {
  const { registry } = await caRegistry();
  const leaf = makeCert({ cn: "d1", issuer: otherRoot });
  assert.equal(refusal(registry.verifyCertificate("d1", [leaf.der])), "bad-certificate");
  // presenting the other CA as an "intermediate" does not help: it does not chain to the trusted root
  assert.equal(refusal(registry.verifyCertificate("d1", [leaf.der, otherRoot.der])), "bad-certificate");
});

test("CA: a leaf naming the trusted root as issuer but signed with another key is refused", async () => {
  const { registry } = await caRegistry();
  const forged = makeCert({ cn: "d1", issuer: root, signer: OTHER_KEYS });
  assert.equal(refusal(registry.verifyCertificate("d1", [forged.der])), "bad-certificate");
});

test("CA: an expired leaf, an expired intermediate, or an expired trusted root is refused", async () => {
  const old = { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) };
  const { registry } = await caRegistry();
  assert.equal(refusal(registry.verifyCertificate("d1", [makeCert({ cn: "d1", issuer: root, ...old }).der])), "bad-certificate");
  const oldInter = makeCert({ cn: "Old Intermediate", ca: true, issuer: root, ...old });
  assert.equal(refusal(registry.verifyCertificate("d1", [makeCert({ cn: "d1", issuer: oldInter }).der, oldInter.der])), "bad-certificate");
  const oldRoot = makeCert({ cn: "Old Root", ca: true, ...old });
  const { registry: r2 } = await makeRegistry([sasDevice("d1", { auth: { type: "certificateAuthority" } })], { trustedCas: [oldRoot.pem] });
  assert.equal(refusal(r2.verifyCertificate("d1", [makeCert({ cn: "d1", issuer: oldRoot }).der])), "bad-certificate");
});

test("CA: a CN that is not the device id is refused", async () => {
  const { registry } = await caRegistry();
  const leaf = makeCert({ cn: "d2", issuer: root });
  const r = registry.verifyCertificate("d1", [leaf.der]);
  assert.equal(refusal(r), "bad-certificate");
  assert.match(r.ok ? "" : r.detail, /CN/);
});

test("CA: a leaf CA certificate cannot act as an intermediate unless it is a CA", async () => {
  const { registry } = await caRegistry();
  const notCa = makeCert({ cn: "Not A CA", issuer: root });
  const leaf = makeCert({ cn: "d1", issuer: notCa });
  assert.equal(refusal(registry.verifyCertificate("d1", [leaf.der, notCa.der])), "bad-certificate");
});

test("CA: with no trusted CA configured, CA authentication is refused", async () => {
  const { registry } = await makeRegistry([sasDevice("d1", { auth: { type: "certificateAuthority" } })]);
  assert.equal(refusal(registry.verifyCertificate("d1", [makeCert({ cn: "d1", issuer: root }).der])), "bad-certificate");
});

test("CA: trusted CAs can be given as one PEM bundle and replaced later", async () => {
  const { registry } = await makeRegistry([sasDevice("d1", { auth: { type: "certificateAuthority" } })], {
    trustedCas: [otherRoot.pem + root.pem],
  });
  const leaf = makeCert({ cn: "d1", issuer: root });
  assert.equal(registry.verifyCertificate("d1", [leaf.der]).ok, true);
  registry.setTrustedCas([otherRoot.pem]);
  assert.equal(refusal(registry.verifyCertificate("d1", [leaf.der])), "bad-certificate");
});

// --- refusals common to both ----------------------------------------------------------------------------

test("X.509 for a module is refused (edgeHub allows it for devices only)", async () => {
  const leaf = makeCert({ cn: "d1", issuer: root });
  const tp = createHash("sha1").update(leaf.der).digest("hex");
  const { registry } = await makeRegistry(
    [sasDevice("d1"), sasDevice("d1/m1", { auth: { type: "selfSigned", primaryThumbprint: tp } })],
    { trustedCas: [root.pem] },
  );
  const r = registry.verifyCertificate("d1/m1", [leaf.der]);
  assert.equal(refusal(r), "bad-certificate");
  assert.match(r.ok ? "" : r.detail, /module/);
});

test("X.509: unknown, disabled, SAS-only identities and garbage certificates are refused", async () => {
  const leaf = makeCert({ cn: "d1", issuer: root });
  const { registry } = await makeRegistry(
    [sasDevice("d1", { auth: { type: "certificateAuthority" }, status: "disabled" }), sasDevice("d3")],
    { trustedCas: [root.pem] },
  );
  assert.equal(refusal(registry.verifyCertificate("d1", [leaf.der])), "disabled");
  assert.equal(refusal(registry.verifyCertificate("ghost", [leaf.der])), "unknown-identity");
  assert.equal(refusal(registry.verifyCertificate("d3", [makeCert({ cn: "d3", issuer: root }).der])), "bad-certificate");
  assert.equal(refusal(registry.verifyCertificate("d1", [])), "malformed");
  assert.equal(refusal(registry.verifyCertificate("d1", [Buffer.from("not a certificate")])), "malformed");
});

test("trustedCas: a non-PEM entry or a leaf certificate fails construction with STRATA_IDENTITY_CA_INVALID", () => {
  const base = { self: "gw1", hubName: HUB, hostnames: [], kv: new MemoryKv<never>(), logger: silentLogger() };
  assert.throws(() => new IdentityRegistry({ ...base, trustedCas: ["hello"] }), (e) => isStrataError(e, "STRATA_IDENTITY_CA_INVALID"));
  const leaf = makeCert({ cn: "d1", issuer: root });
  assert.throws(() => new IdentityRegistry({ ...base, trustedCas: [leaf.pem] }), (e) => isStrataError(e, "STRATA_IDENTITY_CA_INVALID") && /not a CA/.test(e.message));
});
