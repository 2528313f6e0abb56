import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  certFacts,
  createRootCa,
  issueCaCert,
  issueServerCert,
  Pki,
  ServerCertRenewer,
  TlsFileWatcher,
  RENEW_AT_FRACTION,
} from "../../../core/pki/index.js";
import { silentLogger } from "../../../core/log.js";
import { isStrataError } from "../../../core/errors.js";

async function setup(t: { after(fn: () => Promise<void>): void }, days: number) {
  const dir = await mkdtemp(join(tmpdir(), "strata-renew-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const root = await createRootCa({ commonName: "root", keyType: "ecdsa-p256" });
  const edge = await issueCaCert(root, { commonName: "edge", keyType: "ecdsa-p256" });
  const server = await issueServerCert(edge, { hostnames: ["gw.plant"], ips: ["127.0.0.9"], keyType: "ecdsa-p256", days });
  const files = { certFile: join(dir, "server.chain.pem"), keyFile: join(dir, "server.key.pem"), caFile: join(dir, "trust.pem") };
  await writeFile(files.certFile, server.chain);
  await writeFile(files.keyFile, server.key, { mode: 0o600 });
  await writeFile(files.caFile, root.cert);
  const pki = new Pki({ cert: server.chain, key: server.key, chain: server.chain, trustBundle: root.cert, edgeCa: { cert: edge.cert, key: edge.key } });
  return { dir, root, edge, server, files, pki };
}

test("renewNow: same names, key type and lifetime, written to [tls] (key 0600), listeners told", async (t) => {
  const { pki, server, files } = await setup(t, 30);
  const changed: string[] = [];
  pki.onCertificateChanged((m) => changed.push(m.cert));
  const renewer = new ServerCertRenewer({ pki, files, logger: silentLogger() });
  const issued = await renewer.renewNow();

  const before = certFacts(server.cert);
  const after = certFacts(issued.cert);
  assert.notEqual(after.sha256, before.sha256);
  assert.deepEqual(after.dnsNames, ["gw.plant"]);
  assert.deepEqual(after.ips, ["127.0.0.9"]);
  assert.equal(after.keyType, "ecdsa-p256");
  assert.ok(Math.abs(after.notAfter.getTime() - Date.now() - 30 * 86_400_000) < 2 * 3_600_000, "same lifetime");
  assert.equal(await readFile(files.certFile, "utf8"), issued.chain);
  assert.equal(await readFile(files.keyFile, "utf8"), issued.key);
  assert.equal((await stat(files.keyFile)).mode & 0o777, 0o600);
  assert.deepEqual(changed, [issued.chain]);
  assert.equal(pki.chain, issued.chain);
});

test("the timer renews at 2/3 of the lifetime: immediately when already due, not before", async (t) => {
  const { pki, server } = await setup(t, 3);
  const f = certFacts(server.cert);
  const due = f.notBefore.getTime() + (f.notAfter.getTime() - f.notBefore.getTime()) * RENEW_AT_FRACTION;
  const early = new ServerCertRenewer({ pki, logger: silentLogger(), now: () => due - 86_400_000 });
  assert.equal(Math.round(early.dueAt()), Math.round(due));

  // Clock past the due time: start() renews at once (the event is the proof, no sleep).
  const late = new ServerCertRenewer({ pki, logger: silentLogger(), now: () => due + 1000 });
  const renewed = new Promise<string>((resolve) => pki.onCertificateChanged((m) => resolve(m.cert)));
  late.start();
  t.after(() => late.stop());
  const chain = await renewed;
  assert.notEqual(certFacts(chain).sha256, certFacts(server.cert).sha256);
});

test("renewal without an edge CA fails with STRATA_PKI_NO_CA", async (t) => {
  const { server, root } = await setup(t, 3);
  const pki = new Pki({ cert: server.chain, key: server.key, chain: server.chain, trustBundle: root.cert });
  await assert.rejects(new ServerCertRenewer({ pki, logger: silentLogger() }).renewNow(), (e) => isStrataError(e, "STRATA_PKI_NO_CA"));
  assert.throws(() => pki.replaceServerCertificate({ key: root.key, chain: server.chain }), (e) => isStrataError(e, "STRATA_PKI_KEY_MISMATCH"));
});

test("TlsFileWatcher: a certificate and trust bundle replaced on disk are reloaded; a mismatched pair is not", async (t) => {
  const { pki, files, edge, root } = await setup(t, 30);
  const watcher = new TlsFileWatcher({ pki, files, logger: silentLogger(), intervalMs: 50 });
  watcher.start();
  t.after(() => watcher.stop());

  // A key that does not match the chain on disk: nothing applied.
  const other = await issueServerCert(edge, { hostnames: ["gw.plant"], keyType: "ecdsa-p256" });
  await writeFile(files.keyFile, other.key, { mode: 0o600 });
  await watcher.reload();
  assert.notEqual(pki.key, other.key);

  // Then the chain arrives: the pair is applied, and the event fires.
  const applied = new Promise<void>((resolve) => { const off = pki.onCertificateChanged(() => { off(); resolve(); }); });
  await writeFile(files.certFile, other.chain);
  await applied;
  assert.equal(pki.chain, other.chain);

  // Rollover step 1: a bundle with the old and a new root.
  const newRoot = await createRootCa({ commonName: "root 2", keyType: "ecdsa-p256" });
  const bundle = root.cert + newRoot.cert;
  const trusted = new Promise<string>((resolve) => { const off = pki.onCertificateChanged((m) => { off(); resolve(m.ca); }); });
  await writeFile(files.caFile, bundle);
  assert.equal(await trusted, bundle);
});
