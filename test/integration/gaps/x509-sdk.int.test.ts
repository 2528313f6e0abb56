// Issue 12: device certificates issued with `strata pki issue-device` (under the gateway's edge CA), identities
// registered with `strata identity add --ca | --thumbprint`, connect with the Azure device SDK over MQTT.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { Client, Message } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { stringify } from "smol-toml";
import { main } from "../../../core/cli/main.js";
import type { Output } from "../../../core/cli/output.js";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";
import { follow, readLast, rootDataDir } from "../../../plugins/root/index.js";
import { telemetryLogDir } from "../../../plugins/root/telemetry/segments.js";

function capture(): Output & { text: () => string } {
  const lines: string[] = [];
  return { info: (s) => lines.push(s), error: (s) => lines.push(s), text: () => lines.join("\n") };
}

async function cli(args: string[]): Promise<string> {
  const out = capture();
  const code = await main(args, out);
  assert.equal(code, 0, `strata ${args.join(" ")} → ${code}: ${out.text()}`);
  return out.text();
}

/** The TOML an operator would have for the running gateway (the CLI reaches it through its service API). */
function configFileFor(gw: TestGateway): string {
  const c = gw.gw.config;
  const file = join(gw.dir, "strata.toml");
  writeFileSync(file, stringify({
    hub: c.hub, device_id: c.device_id, hostname: c.hostname, data_dir: c.data_dir, tls: c.tls,
    listen: { address: c.listen.address, mqtt: gw.port("mqtt"), amqp: 0, https: gw.port("https") },
    ...(c.service ? { service: c.service } : {}),
  }));
  return file;
}

/**
 * The Node SDK's X.509 provider reads only `HostName` (it ignores `GatewayHostName`, which SAS clients use), so
 * a device behind a gateway names the gateway there; the head does not hold the username's host to the hub name.
 */
function x509ConnectionString(gw: TestGateway, deviceId: string): string {
  return `HostName=localhost:${gw.port("mqtt")};DeviceId=${deviceId};x509=true`;
}

/** An SDK device client authenticating with its certificate (no key in the connection string). */
async function x509Device(t: TestContext, gw: TestGateway, deviceId: string, certDir: string): Promise<Client> {
  const client = Client.fromConnectionString(x509ConnectionString(gw, deviceId), Mqtt);
  await client.setOptions({
    ca: gw.caPem,
    cert: readFileSync(join(certDir, `${deviceId}.chain.pem`), "utf8"),
    key: readFileSync(join(certDir, `${deviceId}.key.pem`), "utf8"),
  });
  await client.open();
  t.after(() => client.close().catch(() => undefined));
  return client;
}

test("X.509 with the Azure device SDK: strata pki issue-device leaves (edge CA) register as --ca and --thumbprint and send telemetry", async (t) => {
  const gw = await startTestGateway({ plugins: ["mqtt", "root"] });
  t.after(() => gw.stop({ remove: true }));
  const certs = mkdtempSync(join(tmpdir(), "strata-x509-sdk-"));
  t.after(() => rmSync(certs, { recursive: true, force: true }));
  const config = configFileFor(gw);

  await cli(["pki", "issue-device", "dev-ca", "--config", config, "--out", certs]);
  await cli(["pki", "issue-device", "dev-tp", "--config", config, "--out", certs]);
  const issued = new X509Certificate(readFileSync(join(certs, "dev-ca.cert.pem")));
  assert.match(issued.issuer, /edge/i, "issue-device signs with the gateway's edge CA, an intermediate under the root");
  const thumbprint = new X509Certificate(readFileSync(join(certs, "dev-tp.cert.pem"))).fingerprint256; // AB:CD:… form
  assert.match(await cli(["identity", "add", "dev-ca", "--ca", "--config", config]), /certificateAuthority/);
  assert.match(await cli(["identity", "add", "dev-tp", "--thumbprint", thumbprint, "--config", config]), /selfSigned/);

  // The root plugin's sink writes telemetry to its log: follow it for the two messages.
  const logDir = telemetryLogDir(rootDataDir(gw.gw.config));
  const abort = new AbortController();
  t.after(() => abort.abort());
  const start = await readLast(logDir);
  const lines: Record<string, unknown>[] = [];
  const twoLogged = new Promise<void>((resolve) => {
    void follow(logDir, start.position, (line) => {
      lines.push(JSON.parse(line) as Record<string, unknown>);
      if (lines.length === 2) resolve();
    }, abort.signal, 100);
  });

  const byCa = await x509Device(t, gw, "dev-ca", certs);
  await byCa.sendEvent(new Message(JSON.stringify({ via: "ca" })));
  const byTp = await x509Device(t, gw, "dev-tp", certs);
  await byTp.sendEvent(new Message(JSON.stringify({ via: "thumbprint" })));

  await twoLogged;
  const seen = Object.fromEntries(lines.map((l) => [l["deviceId"], JSON.parse(String(l["body"])).via]));
  assert.deepEqual(seen, { "dev-ca": "ca", "dev-tp": "thumbprint" });

  // The thumbprint identity is bound to that certificate: dev-ca's certificate does not open dev-tp.
  const impostor = Client.fromConnectionString(x509ConnectionString(gw, "dev-tp"), Mqtt);
  await impostor.setOptions({ ca: gw.caPem, cert: readFileSync(join(certs, "dev-ca.chain.pem"), "utf8"), key: readFileSync(join(certs, "dev-ca.key.pem"), "utf8") });
  await assert.rejects(impostor.open(), "a certificate with another thumbprint must not authenticate dev-tp");
  await impostor.close().catch(() => undefined);
});
