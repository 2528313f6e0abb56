import { readFileSync } from "node:fs";
import https from "node:https";
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { createLogger, signSas } from "../../../core/index.js";
import { startBlobGateway, uploaded, type BlobGateway } from "./harness.js";
import { AZURITE_KEY, startAzurite } from "./support.js";

/** `POST /twins/{device}/modules/$edgeAgent/methods` on the root's service API with an iothubowner token. */
function invoke(gw: BlobGateway, methodName: string, payload: unknown): Promise<{ status: number; payload: Record<string, unknown> }> {
  const token = signSas({ resource: gw.tg.hubName, key: gw.tg.ownerKey, expirySecs: Math.floor(Date.now() / 1000) + 600, keyName: "iothubowner" });
  const body = JSON.stringify({ methodName, payload, responseTimeoutInSeconds: 10 });
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: "127.0.0.1", port: gw.tg.port("https"), servername: "localhost", ca: gw.tg.caPem, method: "POST",
      path: `/twins/gw-root/modules/${encodeURIComponent("$edgeAgent")}/methods?api-version=2021-04-12`,
      headers: { authorization: token, "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) reject(new Error(`service API ${res.statusCode}: ${text}`));
        else resolve(JSON.parse(text) as { status: number; payload: Record<string, unknown> });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("UploadSupportBundle from the root's service API: task id → GetTaskStatus Completed → the bundle is in Azurite and holds no secret", async (t) => {
  const azurite = await startAzurite();
  t.after(() => azurite.stop());
  const gw = await startBlobGateway(
    { upload: { enabled: true, containers: { "strata-support": { target: "%h-support" } }, retry_min_ms: 50, retry_max_ms: 200 } },
    // A real logger (to a sink) so the log ring has lines for the bundle.
    { cloudConnectionString: azurite.connectionString(), root: true, logger: createLogger({ level: "debug", destination: new PassThrough().resume() }) },
  );
  t.after(() => gw.stop());
  // A careless log line carrying secrets: the bundle must still not contain them.
  gw.tg.gw.logger.info({ note: `careless ${gw.key} ${gw.tg.ownerKey}` }, "test line with secrets");

  // 1. The method answers at once with a task id (IoT Edge's shape).
  const done = uploaded(gw.plugin());
  const started = await invoke(gw, "UploadSupportBundle", { schemaVersion: "1.0", since: "1h" });
  assert.equal(started.status, 200);
  assert.equal(started.payload["status"], "NotStarted");
  const correlationId = started.payload["correlationId"];
  assert.equal(typeof correlationId, "string");

  // 2. The bundle reaches Azurite (the support container is mapped); then the task reads Completed.
  assert.equal(await done, "testhub-support");
  const status = await invoke(gw, "GetTaskStatus", { schemaVersion: "1.0", correlationId });
  assert.deepEqual([status.status, status.payload["status"]], [200, "Completed"]);
  assert.equal((await invoke(gw, "GetTaskStatus", { correlationId: "nope" })).status, 404);

  // 3. The bundle: config, check, stats, logs — and none of this gateway's secrets.
  const cloud = azurite.client.getContainerClient("testhub-support");
  const names: string[] = [];
  for await (const b of cloud.listBlobsFlat()) names.push(b.name);
  assert.equal(names.length, 1);
  assert.match(names[0]!, /^support-bundles\/gw-root\/.*\.json$/);
  const text = (await cloud.getBlobClient(names[0]!).downloadToBuffer()).toString("utf8");
  const bundle = JSON.parse(text) as Record<string, unknown>;
  for (const k of ["config", "check", "hub", "blob", "logs"]) assert.ok(k in bundle, `bundle has ${k}`);
  assert.equal((bundle["config"] as { device_id: string }).device_id, "gw-root");
  const secrets = {
    accountKey: gw.key,
    ownerKey: gw.tg.ownerKey,
    cloudKey: AZURITE_KEY,
    tlsKey: readFileSync(gw.tg.gw.config.tls.key_file, "utf8").split("\n").filter((l) => l && !l.startsWith("-----"))[0]!,
  };
  for (const [what, secret] of Object.entries(secrets)) assert.equal(text.includes(secret), false, `${what} leaked into the bundle`);
  assert.ok((bundle["logs"] as string[]).some((l) => l.includes("test line with secrets") && l.includes("[redacted]")), "the careless line is there, scrubbed");

  // 4. UploadModuleLogs: another task, another blob.
  const logsDone = uploaded(gw.plugin());
  const logs = await invoke(gw, "UploadModuleLogs", { schemaVersion: "1.0", items: [{ id: ".*", filter: { tail: 100 } }], encoding: "none", contentType: "text" });
  assert.equal(logs.payload["status"], "NotStarted");
  await logsDone;
  assert.equal((await invoke(gw, "GetTaskStatus", { correlationId: logs.payload["correlationId"] })).payload["status"], "Completed");
  assert.equal((await invoke(gw, "Reboot", {})).status, 404);
});
