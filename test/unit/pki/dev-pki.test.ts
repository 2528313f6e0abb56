import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, stat, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import {
  certificateExpiry,
  createRootCa,
  ensureDevPki,
  issueDeviceCert,
  issueServerCert,
  DEV_PKI_FILES,
  Pki,
} from "../../../core/pki/index.js";
import { isStrataError } from "../../../core/errors.js";

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "strata-pki-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface TlsServerOpts {
  cert: string;
  key: string;
  /** CAs to verify client certificates against; when set, a client certificate is required. */
  clientCa?: string;
}

/** A TLS server on 127.0.0.1:0 that answers "ok"; returns its port. */
async function tlsServer(t: { after(fn: () => Promise<void>): void }, opts: TlsServerOpts): Promise<number> {
  const server = tls.createServer(
    { cert: opts.cert, key: opts.key, ca: opts.clientCa, requestCert: !!opts.clientCa, rejectUnauthorized: !!opts.clientCa },
    (socket) => socket.end("ok"),
  );
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** Connects and reports whether the server's chain verified ("authorized") or why not. */
function probe(opts: tls.ConnectionOptions): Promise<{ authorized: boolean; error?: string; data?: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", ...opts }, () => {
      let data = "";
      socket.setEncoding("utf8");
      socket.on("data", (d: string) => (data += d));
      socket.on("end", () => resolve({ authorized: socket.authorized, data }));
    });
    socket.on("error", (err: NodeJS.ErrnoException) => resolve({ authorized: false, error: err.code ?? err.message }));
  });
}

test("dev PKI writes the files, keys 0600, and its chain verifies with node's TLS for localhost and 127.0.0.1", async (t) => {
  const dir = await tempDir(t);
  const dev = await ensureDevPki(join(dir, "pki"));
  assert.deepEqual(dev.created, ["root", "edgeCa", "server"]);

  for (const name of ["rootKey", "edgeCaKey", "serverKey"] as const) {
    assert.equal((await stat(dev.paths[name])).mode & 0o777, 0o600, `${name} must be 0600`);
  }
  assert.equal((await stat(dev.paths.serverChain)).mode & 0o077, 0o044);
  assert.equal(await readFile(dev.paths.trustBundle, "utf8"), dev.rootCa.cert);
  assert.equal(await readFile(dev.paths.serverChain, "utf8"), dev.server.cert + dev.edgeCa.cert);

  const server = new X509Certificate(dev.server.cert);
  assert.ok(server.checkHost("localhost"));
  assert.ok(server.checkIP("127.0.0.1"));
  assert.ok(server.checkIssued(new X509Certificate(dev.edgeCa.cert)));
  assert.ok(new X509Certificate(dev.edgeCa.cert).checkIssued(new X509Certificate(dev.rootCa.cert)));
  assert.ok(new X509Certificate(dev.edgeCa.cert).ca);

  const port = await tlsServer(t, { cert: dev.server.chain, key: dev.server.key });
  const byName = await probe({ port, ca: dev.trustBundle, servername: "localhost" });
  assert.deepEqual(byName, { authorized: true, data: "ok" });
  // No servername: node checks the IP SAN against the host it dialled.
  const byIp = await probe({ port, ca: dev.trustBundle });
  assert.deepEqual(byIp, { authorized: true, data: "ok" });
  const wrongName = await probe({ port, ca: dev.trustBundle, servername: "gateway.example" });
  assert.equal(wrongName.error, "ERR_TLS_CERT_ALTNAME_INVALID");

  const otherRoot = await createRootCa({ commonName: "someone else" });
  const wrongCa = await probe({ port, ca: otherRoot.cert, servername: "localhost" });
  assert.equal(wrongCa.authorized, false);
  assert.equal(wrongCa.error, "UNABLE_TO_GET_ISSUER_CERT_LOCALLY");
});

test("dev PKI reuse is idempotent and only reissues the layer that no longer fits", async (t) => {
  const dir = await tempDir(t);
  const first = await ensureDevPki(dir);
  const before = await Promise.all(Object.values(DEV_PKI_FILES).map((f) => stat(join(dir, f))));

  const again = await ensureDevPki(dir);
  assert.deepEqual(again.created, []);
  assert.equal(again.rootCa.cert, first.rootCa.cert);
  assert.equal(again.edgeCa.key, first.edgeCa.key);
  assert.equal(again.server.cert, first.server.cert);
  const after = await Promise.all(Object.values(DEV_PKI_FILES).map((f) => stat(join(dir, f))));
  assert.deepEqual(after.map((s) => s.mtimeMs), before.map((s) => s.mtimeMs), "reuse must not rewrite files");

  // A new name: the server certificate is reissued, the CAs (which devices already trust) are kept.
  const renamed = await ensureDevPki(dir, { hostnames: ["localhost", "gw2.local"], ips: ["127.0.0.1", "127.0.0.2"] });
  assert.deepEqual(renamed.created, ["server"]);
  assert.equal(renamed.rootCa.cert, first.rootCa.cert);
  assert.ok(new X509Certificate(renamed.server.cert).checkIP("127.0.0.2"));
  assert.equal(await readFile(join(dir, DEV_PKI_FILES.serverChain), "utf8"), renamed.server.cert + first.edgeCa.cert);

  // A damaged edge CA key: the edge CA and server are reissued under the same root.
  await writeFile(join(dir, DEV_PKI_FILES.edgeCaKey), "garbage", { mode: 0o600 });
  const repaired = await ensureDevPki(dir);
  assert.deepEqual(repaired.created, ["edgeCa", "server"]);
  assert.equal(repaired.rootCa.cert, first.rootCa.cert);
  assert.notEqual(repaired.edgeCa.cert, first.edgeCa.cert);
});

test("issueServerCert gives every gateway hop TLS that verifies against the root", async (t) => {
  const dir = await tempDir(t);
  const dev = await ensureDevPki(dir);
  const gw3 = await issueServerCert(dev.edgeCa, { hostnames: ["gw3.plant"], ips: ["127.0.0.3"], days: 10 });
  const port = await tlsServer(t, { cert: gw3.chain, key: gw3.key });
  assert.deepEqual(await probe({ port, ca: dev.trustBundle, servername: "gw3.plant" }), { authorized: true, data: "ok" });
  const expiry = certificateExpiry(gw3.cert).getTime();
  assert.ok(Math.abs(expiry - (Date.now() + 10 * 86_400_000)) < 60_000, "days sets the expiry");

  await assert.rejects(issueServerCert(dev.edgeCa, { ips: ["gw.local"] }), (e) => isStrataError(e, "STRATA_PKI_BAD_NAME"));
  await assert.rejects(issueServerCert(dev.server, { hostnames: ["x"] }), (e) => isStrataError(e, "STRATA_PKI_NOT_A_CA"));
  await assert.rejects(
    issueServerCert(dev.edgeCa, { hostnames: ["x"], keyType: "dsa-1024" as never }),
    (e) => isStrataError(e, "STRATA_PKI_KEY_TYPE_UNSUPPORTED"),
  );
  assert.throws(() => certificateExpiry("not a pem"), (e) => isStrataError(e, "STRATA_PKI_INVALID_PEM"));
});

test("issueDeviceCert: CN = deviceId, clientAuth, accepted by a server requiring client certs from the root", async (t) => {
  const dir = await tempDir(t);
  const { pki, dev } = await Pki.dev(dir);
  const device = await pki.issueDeviceCert("sensor-7");
  const x = new X509Certificate(device.cert);
  assert.match(x.subject, /CN=sensor-7/);
  assert.equal(x.ca, false);
  assert.deepEqual(x.keyUsage, ["1.3.6.1.5.5.7.3.2"]); // id-kp-clientAuth

  const port = await tlsServer(t, { cert: pki.chain, key: pki.key, clientCa: pki.trustBundle });
  const ok = await probe({ port, ca: pki.trustBundle, servername: "localhost", cert: device.chain, key: device.key });
  assert.deepEqual(ok, { authorized: true, data: "ok" });
  const stranger = await issueDeviceCert(await createRootCa({ commonName: "stranger" }), "sensor-7");
  const refused = await probe({ port, ca: pki.trustBundle, servername: "localhost", cert: stranger.cert, key: stranger.key });
  assert.notEqual(refused.data, "ok");

  assert.equal(pki.serverCertExpiry().getTime(), certificateExpiry(dev.server.cert).getTime());
  assert.throws(
    () => new Pki({ cert: pki.cert, key: pki.key, chain: pki.chain, trustBundle: pki.trustBundle }).issueDeviceCert("d"),
    (e) => isStrataError(e, "STRATA_PKI_NO_CA"),
  );
});
