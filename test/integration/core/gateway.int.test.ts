import assert from "node:assert/strict";
import https from "node:https";
import { test } from "node:test";
import { startTestGateway } from "../../support/gateway.js";
import { signSas } from "../../../core/identity/index.js";

test("a gateway starts with no plugins, listens on HTTPS with the dev PKI and stops cleanly", async (t) => {
  const tg = await startTestGateway();
  t.after(() => tg.stop({ remove: true }));
  const port = tg.port("https");
  assert.ok(port > 0);
  // 1. TLS verifies against the dev root CA for the IP the gateway bound.
  const status = await new Promise<number>((resolve, reject) => {
    https.get({ host: "127.0.0.1", port, path: "/no-such-route", ca: tg.caPem }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", reject);
  });
  assert.equal(status, 404);
});

test("a message ingested by a device is durable in $upstream's sink queue at the root and survives a restart", async (t) => {
  let tg = await startTestGateway();
  t.after(() => tg.stop({ remove: true }));
  await tg.addDevice("dev1");
  const principal = { id: "dev1", deviceId: "dev1", method: "sas" as const };
  const r = await tg.gw.hub.ingest(principal, { body: Buffer.from("hello"), properties: { a: "1" }, systemProperties: { messageId: "m1" } });
  assert.equal(r.duplicate, false);
  assert.deepEqual(r.endpoints, ["$upstream"], "no sink at a bare root: kept in $upstream, never dropped");
  await tg.stop();
  tg = await tg.restart();
  const leases = await tg.gw.store.queue("$upstream").lease(10);
  assert.equal(leases.length, 1);
  assert.equal(leases[0]!.message.body.toString(), "hello");
  assert.equal(leases[0]!.message.systemProperties.connectionDeviceId, "dev1");
  assert.equal(leases[0]!.message.id, r.id);
  // The device's SAS token verifies against the identity kept in the store across the restart.
  const rec = tg.gw.identities.get("dev1");
  assert.ok(rec && rec.auth.type === "sas");
  const token = signSas({ resource: `${tg.hubName}/devices/dev1`, key: rec.auth.primaryKey, expirySecs: Math.floor(Date.now() / 1000) + 3600 });
  assert.equal(tg.gw.identities.verifySas("dev1", token).ok, true);
});
