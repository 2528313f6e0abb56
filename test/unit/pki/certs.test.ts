import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import {
  certFacts,
  createRootCa,
  issueCaCert,
  issueDeviceCert,
  issueServerCert,
  keyMatches,
  verifyIssued,
  type KeyType,
} from "../../../core/pki/certs.js";
import { isStrataError } from "../../../core/errors.js";

interface After { after(fn: () => Promise<void> | void): void }

/** A TLS server on 127.0.0.1:0; requires a client certificate chaining to `clientCa` when given. */
async function tlsServer(t: After, cert: string, key: string, clientCa?: string): Promise<number> {
  const server = tls.createServer(
    { cert, key, ca: clientCa, requestCert: !!clientCa, rejectUnauthorized: !!clientCa },
    (socket) => socket.end((socket.getPeerCertificate().subject?.CN as string | undefined) ?? "anonymous"),
  );
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

function probe(opts: tls.ConnectionOptions): Promise<{ authorized: boolean; data?: string; error?: string; keyType?: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", ...opts }, () => {
      const keyType = socket.getPeerCertificate().pubkey ? new X509Certificate(socket.getPeerCertificate().raw).publicKey.asymmetricKeyType : undefined;
      let data = "";
      socket.setEncoding("utf8");
      socket.on("data", (d: string) => (data += d));
      socket.on("end", () => resolve({ authorized: socket.authorized, data, ...(keyType ? { keyType } : {}) }));
    });
    socket.on("error", (err: NodeJS.ErrnoException) => resolve({ authorized: false, error: err.code ?? err.message }));
  });
}

const NODE_KEY: Record<string, string> = { "rsa-2048": "rsa", "ecdsa-p256": "ec" };

for (const keyType of ["ecdsa-p256", "rsa-2048"] as KeyType[]) {
  test(`${keyType}: root → edge CA → server chain verifies with node's TLS; device cert is accepted as a client`, async (t) => {
    const root = await createRootCa({ commonName: `root ${keyType}`, keyType });
    const edge = await issueCaCert(root, { commonName: `edge ${keyType}`, keyType });
    const server = await issueServerCert(edge, { hostnames: ["gw.plant"], ips: ["127.0.0.1"], keyType });
    const device = await issueDeviceCert(edge, "sensor-1", { keyType });

    const facts = certFacts(server.cert);
    assert.equal(facts.keyType, keyType);
    assert.deepEqual(facts.dnsNames, ["gw.plant"]);
    assert.deepEqual(facts.ips, ["127.0.0.1"]);
    assert.equal(facts.isCa, false);
    assert.equal(certFacts(root.cert).selfSigned, true);
    assert.equal(certFacts(edge.cert).isCa, true);
    assert.ok(verifyIssued(server.cert, edge.cert, server.key));
    assert.ok(verifyIssued(edge.cert, root.cert, edge.key));
    assert.ok(!verifyIssued(server.cert, root.cert), "the root did not sign the server certificate itself");
    assert.ok(keyMatches(server.chain, server.key));
    assert.ok(!keyMatches(server.chain, device.key));

    // The server presents its chain (server + edge CA); the client trusts only the root.
    const port = await tlsServer(t, server.chain, server.key, root.cert);
    const byName = await probe({ port, ca: root.cert, servername: "gw.plant", cert: device.chain, key: device.key });
    assert.deepEqual(byName, { authorized: true, data: "sensor-1", keyType: NODE_KEY[keyType] });
    const byIp = await probe({ port, ca: root.cert, cert: device.chain, key: device.key });
    assert.equal(byIp.authorized, true);
    // Without a client certificate the server refuses; with a foreign root the client refuses.
    const noClient = await probe({ port, ca: root.cert, servername: "gw.plant" });
    assert.notEqual(noClient.data, "sensor-1");
    const otherRoot = await createRootCa({ commonName: "other", keyType });
    const foreign = await probe({ port, ca: otherRoot.cert, servername: "gw.plant", cert: device.chain, key: device.key });
    assert.equal(foreign.authorized, false);
    assert.match(foreign.error ?? "", /UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED|unable to/i);
    // Device certificates are for clients, not servers (and the reverse).
    assert.ok(new X509Certificate(device.cert).subject.includes("CN=sensor-1"));
  });
}

test("mixed key types: an ECDSA server certificate from an RSA edge CA and an RSA one from an ECDSA CA verify", async (t) => {
  const rsaRoot = await createRootCa({ commonName: "rsa root", keyType: "rsa-2048" });
  const ecEdge = await issueCaCert(rsaRoot, { commonName: "ec edge", keyType: "ecdsa-p256" });
  const rsaServer = await issueServerCert(ecEdge, { ips: ["127.0.0.1"], keyType: "rsa-2048" });
  const port = await tlsServer(t, rsaServer.chain, rsaServer.key);
  assert.equal((await probe({ port, ca: rsaRoot.cert })).authorized, true);

  const ecServer = await issueServerCert(ecEdge, { ips: ["127.0.0.1"], keyType: "ecdsa-p256" });
  const port2 = await tlsServer(t, ecServer.chain, ecServer.key);
  const r = await probe({ port: port2, ca: rsaRoot.cert });
  assert.equal(r.authorized, true);
  assert.equal(r.keyType, "ec");
});

test("issuing refuses a non-CA issuer, a key that is not the CA's, and unknown key types", async () => {
  const root = await createRootCa({ commonName: "root", keyType: "ecdsa-p256" });
  const other = await createRootCa({ commonName: "other", keyType: "ecdsa-p256" });
  const leaf = await issueServerCert(root, { hostnames: ["a"], keyType: "ecdsa-p256" });
  await assert.rejects(issueServerCert(leaf, { hostnames: ["b"] }), (e) => isStrataError(e, "STRATA_PKI_NOT_A_CA"));
  await assert.rejects(issueServerCert({ cert: root.cert, key: other.key }, { hostnames: ["b"] }), (e) => isStrataError(e, "STRATA_PKI_KEY_MISMATCH"));
  await assert.rejects(createRootCa({ commonName: "x", keyType: "ed25519" as never }), (e) => isStrataError(e, "STRATA_PKI_KEY_TYPE_UNSUPPORTED"));
  await assert.rejects(issueDeviceCert(root, ""), (e) => isStrataError(e, "STRATA_PKI_BAD_NAME"));
});
