import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import tls from "node:tls";
import { Client, Message } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { certFacts } from "../../../core/pki/index.js";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";

/** The SHA-256 of the certificate a fresh TLS connection is served, and whether it verified against `ca`. */
function served(host: string, port: number, ca: string): Promise<{ sha256: string; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, ca, servername: "localhost" }, () => {
      const cert = socket.getPeerCertificate();
      resolve({ sha256: cert.fingerprint256.replace(/:/g, ""), authorized: socket.authorized });
      socket.destroy();
    });
    socket.once("error", reject);
  });
}

async function device(t: { after(fn: () => Promise<unknown>): void }, gw: TestGateway, id: string): Promise<{ client: Client; drops: string[] }> {
  const { connectionString } = await gw.addDevice(id);
  const client = Client.fromConnectionString(connectionString, Mqtt);
  await client.setOptions({ ca: gw.caPem });
  await client.open();
  const drops: string[] = [];
  client.on("disconnect", () => drops.push("disconnect"));
  client.on("error", (e: Error) => drops.push(`error ${e.message}`));
  t.after(() => client.close().catch(() => undefined));
  return { client, drops };
}

test("a server certificate renewed while 2 devices stay connected over MQTT: no drop, new connections get the new one", async (t) => {
  // Its own loopback address: the renewal rewrites this address's (test-process-wide) dev PKI files.
  const gw = await startTestGateway({ plugins: ["mqtt"], address: "127.0.0.71" });
  t.after(() => gw.stop({ remove: true }));
  const mqttPort = gw.port("mqtt");
  const httpsPort = gw.port("https");
  const before = await served(gw.address, mqttPort, gw.caPem);
  assert.equal(before.authorized, true);

  // 1. two devices connected and sending
  const a = await device(t, gw, "rot-a");
  const b = await device(t, gw, "rot-b");
  await a.client.sendEvent(new Message("before"));
  await b.client.sendEvent(new Message("before"));

  // 2. renew (what the timer does at 2/3 of the lifetime)
  const renewer = gw.gw.renewer;
  assert.ok(renewer, "a gateway holding its edge CA runs a renewer");
  const issued = await renewer.renewNow();
  const fresh = certFacts(issued.cert);

  // 3. new connections, on every TLS listener, get the new certificate, verified against the same root
  for (const port of [mqttPort, httpsPort]) {
    const after = await served(gw.address, port, gw.caPem);
    assert.equal(after.sha256, fresh.sha256);
    assert.notEqual(after.sha256, before.sha256);
    assert.equal(after.authorized, true);
  }
  const c = await device(t, gw, "rot-c");
  await c.client.sendEvent(new Message("new connection"));

  // 4. the two devices were not dropped: their next PUBACKs come over the same connections
  await a.client.sendEvent(new Message("after"));
  await b.client.sendEvent(new Message("after"));
  assert.deepEqual(a.drops, []);
  assert.deepEqual(b.drops, []);

  // 5. the renewal is on disk for the next start (key 0600)
  const config = gw.gw.config;
  assert.equal(readFileSync(config.tls.cert_file, "utf8"), issued.chain);
  assert.equal(statSync(config.tls.key_file).mode & 0o777, 0o600);
});
