import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../../core/cli/main.js";
import { EXPIRY_WARN_DAYS, runChecks } from "../../../core/cli/check.js";
import { validateConfig } from "../../../core/config/index.js";
import { certFacts, createRootCa, issueCaCert, issueServerCert, verifyIssued } from "../../../core/pki/index.js";

function capture() {
  const text: string[] = [];
  return { out: { info: (s: string) => text.push(s), error: (s: string) => text.push(s) }, text };
}

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "strata-pki-cli-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("strata pki init (ECDSA) writes a root CA with its key 0600, refuses to overwrite it; issue-edge-ca and issue-device chain to it", async (t) => {
  const dir = await tempDir(t);
  const c = capture();
  assert.equal(await main(["pki", "init", "--out", join(dir, "root"), "--key-type", "ecdsa-p256", "--cn", "Plant root"], c.out), 0);
  const rootCert = await readFile(join(dir, "root", "root-ca.cert.pem"), "utf8");
  assert.equal((await stat(join(dir, "root", "root-ca.key.pem"))).mode & 0o777, 0o600);
  assert.equal(certFacts(rootCert).keyType, "ecdsa-p256");
  assert.equal(certFacts(rootCert).commonName, "Plant root");
  assert.equal(await main(["pki", "init", "--out", join(dir, "root")], c.out), 1, "never overwrites a root key");
  assert.match(c.text.at(-1)!, /STRATA_PKI_EXISTS/);

  assert.equal(await main(["pki", "issue-edge-ca", "gw1", "--ca-dir", join(dir, "root"), "--out", join(dir, "edge")], c.out), 0);
  const edge = await readFile(join(dir, "edge", "edge-ca.cert.pem"), "utf8");
  assert.ok(verifyIssued(edge, rootCert));
  assert.equal((await stat(join(dir, "edge", "edge-ca.key.pem"))).mode & 0o777, 0o600);

  assert.equal(await main(["pki", "issue-device", "sensor-7", "--ca-dir", join(dir, "root"), "--out", join(dir, "dev"), "--key-type", "ecdsa-p256"], c.out), 0);
  const device = await readFile(join(dir, "dev", "sensor-7.cert.pem"), "utf8");
  assert.equal(certFacts(device).commonName, "sensor-7");
  assert.ok(verifyIssued(device, rootCert));
  assert.equal((await stat(join(dir, "dev", "sensor-7.key.pem"))).mode & 0o777, 0o600);
  assert.equal(await main(["pki", "init", "--key-type", "dsa"], c.out), 1);
});

test(`strata check warns ${EXPIRY_WARN_DAYS} days ahead for the server certificate, the edge CA and a trusted root; pki show and trust-bundle`, async (t) => {
  const dir = await tempDir(t);
  const root = await createRootCa({ commonName: "short root", days: 30 });
  const edge = await issueCaCert(root, { commonName: "short edge", days: 20 });
  const server = await issueServerCert(edge, { hostnames: ["localhost"], ips: ["127.0.0.1"], days: 10 });
  const files = {
    cert_file: join(dir, "server.chain.pem"), key_file: join(dir, "server.key.pem"), ca_file: join(dir, "trust.pem"),
    edge_ca_cert_file: join(dir, "edge.pem"), edge_ca_key_file: join(dir, "edge.key.pem"),
  };
  await writeFile(files.cert_file, server.chain);
  await writeFile(files.key_file, server.key, { mode: 0o600 });
  await writeFile(files.ca_file, root.cert);
  await writeFile(files.edge_ca_cert_file, edge.chain);
  await writeFile(files.edge_ca_key_file, edge.key, { mode: 0o600 });
  const config = validateConfig(
    { hub: "h", device_id: "gw", hostname: "localhost", data_dir: join(dir, "data"), tls: files, listen: { address: "127.0.0.1", mqtt: 0, amqp: 0, https: 0 } },
    { source: "test", baseDir: dir },
  );
  const lines = await runChecks(config);
  const warns = lines.filter((l) => l.verdict === "warn").map((l) => l.detail);
  assert.ok(warns.some((d) => d.startsWith("server certificate expires in 9 days") || d.startsWith("server certificate expires in 10 days")), warns.join("\n"));
  assert.ok(warns.some((d) => d.startsWith("edge CA expires in")), warns.join("\n"));
  assert.ok(warns.some((d) => d.startsWith("trusted root") && d.includes("short root")), warns.join("\n"));

  const configFile = join(dir, "strata.toml");
  await writeFile(configFile, `hub = "h"\ndevice_id = "gw"\nhostname = "localhost"\ndata_dir = "data"\n[tls]\n${Object.entries(files).map(([k, v]) => `${k} = "${v}"`).join("\n")}\n[listen]\naddress = "127.0.0.1"\nmqtt = 0\namqp = 0\nhttps = 0\n`);
  const c = capture();
  assert.equal(await main(["pki", "show", "--config", configFile], c.out), 0);
  assert.match(c.text.join("\n"), /server: CN=localhost[\s\S]*names localhost, 127\.0\.0\.1[\s\S]*edge CA: CN=short edge \(CA\)[\s\S]*trusted root 1: CN=short root \(CA\) self-signed/);

  // Rollover step 1: the new root joins the bundle; step 3: the old one leaves it.
  const next = await createRootCa({ commonName: "next root", keyType: "ecdsa-p256" });
  await writeFile(join(dir, "next.pem"), next.cert);
  assert.equal(await main(["pki", "trust-bundle", "--config", configFile, "--add", join(dir, "next.pem"), "--write"], c.out), 0);
  assert.equal((await readFile(files.ca_file, "utf8")).match(/BEGIN CERTIFICATE/g)?.length, 2);
  assert.equal(await main(["pki", "trust-bundle", "--config", configFile, "--remove", certFacts(root.cert).sha256, "--write"], c.out), 0);
  assert.equal(certFacts(await readFile(files.ca_file, "utf8")).commonName, "next root");
});
