import assert from "node:assert/strict";
import { dirname } from "node:path";
import { test } from "node:test";
import { connectAsync, type IClientOptions } from "mqtt";
import { ensureDevPki, issueDeviceCert, type IssuedCert } from "../../../core/index.js";
import type { TestGateway } from "../../support/gateway.js";
import { mqttGateway, takeFromQueue } from "./helpers.js";

function options(gw: TestGateway, clientId: string, cert: IssuedCert): IClientOptions {
  return {
    host: gw.address, port: gw.port("mqtt"), protocol: "mqtts", ca: gw.caPem, servername: "localhost",
    clientId, username: `${gw.hubName}/${clientId}/?api-version=2021-04-12`,
    cert: cert.chain, key: cert.key, clean: true, reconnectPeriod: 0, protocolVersion: 4,
  };
}

test("X.509: a CA-signed client certificate with CN = device id connects without a password; another CN is refused", async (t) => {
  const gw = await mqttGateway(t);
  // The test gateway's dev PKI lives next to its CA file; reusing it gives the edge CA the gateway trusts.
  const dev = await ensureDevPki(dirname(gw.caFile), { hostnames: ["localhost"], ips: [gw.address] });
  await gw.gw.identities.put({ id: "x1", deviceId: "x1", status: "enabled", auth: { type: "certificateAuthority" }, edge: false });
  // Issued by the root CA itself: the chain walk in Identities verifies it (no intermediate involved).
  const x1 = await issueDeviceCert(dev.rootCa, "x1");
  const x2 = await issueDeviceCert(dev.rootCa, "x2");

  const client = await connectAsync(options(gw, "x1", x1));
  t.after(() => client.endAsync(true));
  await client.publishAsync("devices/x1/messages/events/via=x509", "cert", { qos: 1 });
  const [lease] = await takeFromQueue(gw, "$upstream", 1);
  assert.equal(lease!.message.source, "x1");

  try {
    const wrong = await connectAsync(options(gw, "x1", x2));
    await wrong.endAsync(true);
    assert.fail("a certificate for x2 must not authenticate x1");
  } catch (err) {
    assert.ok([4, 5].includes((err as { code?: number }).code ?? -1), `CONNACK ${(err as { code?: number }).code}`);
  }
});

test("X.509: a device certificate issued by an intermediate (the edge CA) the client sends in its chain connects", async (t) => {
  const gw = await mqttGateway(t);
  const dev = await ensureDevPki(dirname(gw.caFile), { hostnames: ["localhost"], ips: [gw.address] });
  await gw.gw.identities.put({ id: "x3", deviceId: "x3", status: "enabled", auth: { type: "certificateAuthority" }, edge: false });
  // Node hands the server only the leaf; the head tells Identities that the handshake verified the chain.
  const x3 = await issueDeviceCert(dev.edgeCa, "x3");
  const client = await connectAsync(options(gw, "x3", x3));
  t.after(() => client.endAsync(true));
  await client.publishAsync("devices/x3/messages/events/via=edge-ca", "cert", { qos: 1 });
  const [lease] = await takeFromQueue(gw, "$upstream", 1);
  assert.equal(lease!.message.source, "x3");

  // Without the edge CA in its chain the handshake cannot verify the leaf, and the leaf alone does not reach the root.
  const leafOnly = { ...x3, chain: x3.cert };
  try {
    const refused = await connectAsync(options(gw, "x3", leafOnly));
    await refused.endAsync(true);
    assert.fail("a leaf under the edge CA without its intermediate must not authenticate");
  } catch (err) {
    assert.ok([4, 5].includes((err as { code?: number }).code ?? -1), `CONNACK ${(err as { code?: number }).code}`);
  }
});
