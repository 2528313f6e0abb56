// @azure/storage-blob at the bottom of a chain of five gateways (child processes on 127.66.2.x:443): requests
// cross four https-fronts to the top's blob plugin, which uploads to Azurite under the mapped names.
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { signSas } from "../../../core/index.js";
import { buildTree, treeUnavailable, type Tree } from "../../support/tree.js";
import { startAzurite, trustCa } from "./support.js";

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
const MiB = 1024 * 1024;
const skip = treeUnavailable();

test("a 5-gateway chain: container, 64 MiB in blocks and small blobs from the bottom; list, download; all in Azurite from the top; UploadSupportBundle from the root on the bottom gateway", { skip }, async (t) => {
  const azurite = await startAzurite();
  t.after(() => azurite.stop());
  const secrets = mkdtempSync(join(tmpdir(), "strata-blob-chain-"));
  const key = randomBytes(64).toString("base64");
  writeFileSync(join(secrets, "blob.key"), key, { mode: 0o600 });
  writeFileSync(join(secrets, "cloud.cs"), azurite.connectionString(), { mode: 0o600 });
  const front = { "https-front": {} };
  const tree = await buildTree({
    subnet: "127.66.2",
    gateways: [
      { id: "top", plugins: { blob: { account_name: "edgelocal", account_key_file: join(secrets, "blob.key"), upload: { enabled: true, connection_string_file: join(secrets, "cloud.cs"), containers: { telemetry: { target: "%d-%c" }, "strata-support": { target: "%h-support" } } } } } },
      { id: "l2", parent: "top", plugins: front },
      { id: "l3", parent: "l2", plugins: front },
      { id: "l4", parent: "l3", plugins: front },
      // The bottom keeps no store: its $edgeAgent methods send results up to the top; its front forwards /blob.
      { id: "l5", parent: "l4", plugins: { "https-front": { blob: "parent" }, blob: { local_store: false, account_name: "edgelocal", account_key_file: join(secrets, "blob.key") } } },
    ],
  });
  t.after(() => tree.cleanup());
  await tree.startAll();

  trustCa(tree.caPem);
  const client = new BlobServiceClient(`https://${tree.gw("l5").address}:443/blob/edgelocal`, new StorageSharedKeyCredential("edgelocal", key), { retryOptions: { maxTries: 1 } });
  const container = client.getContainerClient("telemetry");
  await container.create();
  const big = randomBytes(64 * MiB);
  const from = tree.root.lines.length;
  const started = Date.now();
  await container.getBlockBlobClient("big.bin").uploadData(big, { blockSize: 4 * MiB, maxSingleShotSize: MiB, concurrency: 4 });
  const secs = (Date.now() - started) / 1000;
  t.diagnostic(`64 MiB through 4 fronts in ${secs.toFixed(2)} s (${(64 / secs).toFixed(0)} MiB/s)`);
  for (let i = 0; i < 3; i++) await container.getBlockBlobClient(`small-${i}.txt`).uploadData(Buffer.from(`small ${i}`));

  const names: string[] = [];
  for await (const b of container.listBlobsFlat()) names.push(b.name);
  assert.deepEqual(names, ["big.bin", "small-0.txt", "small-1.txt", "small-2.txt"]);
  assert.equal(sha(await container.getBlobClient("big.bin").downloadToBuffer(undefined, undefined, { blockSize: 8 * MiB, concurrency: 4 })), sha(big));
  assert.equal((await container.getBlobClient("small-1.txt").downloadToBuffer()).toString(), "small 1");

  // The top uploads them to Azurite as "<top's device id>-telemetry".
  await tree.root.waitForLine((l) => l.includes('"msg":"blob uploaded"') && l.includes('"blob":"big.bin"'), 60_000, "big.bin uploaded", from);
  for (let i = 0; i < 3; i++) await tree.root.waitForLine((l) => l.includes('"msg":"blob uploaded"') && l.includes(`"blob":"small-${i}.txt"`), 30_000, `small-${i} uploaded`, from);
  const cloud = azurite.client.getContainerClient("top-telemetry");
  assert.equal(sha(await cloud.getBlobClient("big.bin").downloadToBuffer()), sha(big));
  assert.equal((await cloud.getBlobClient("small-2.txt").downloadToBuffer()).toString(), "small 2");

  // UploadSupportBundle on the bottom gateway from the root: the module identity is made at the root and
  // reaches l5 by scope sync; the method comes down the chain, the bundle goes up the fronts to the top, on to Azurite.
  const made = await service(tree, "PUT", `/devices/l5/modules/${encodeURIComponent("$edgeAgent")}`, { deviceId: "l5", moduleId: "$edgeAgent" });
  assert.ok(made.status === 200 || made.status === 201, `module identity: ${made.status} ${JSON.stringify(made.json)}`);
  const fromTop = tree.root.lines.length;
  const started2 = await invokeBottom(tree, "UploadSupportBundle", { schemaVersion: "1.0" });
  assert.equal(started2.status, 200);
  const correlationId = started2.payload["correlationId"];
  const line = await tree.root.waitForLine((l) => l.includes('"msg":"blob uploaded"') && l.includes("support-bundles/l5/"), 60_000, "l5's bundle uploaded", fromTop);
  const bundleName = (JSON.parse(line) as { blob: string }).blob;
  const status = await invokeBottom(tree, "GetTaskStatus", { correlationId });
  assert.equal(status.payload["status"], "Completed");
  const bundleText = (await azurite.client.getContainerClient(`${tree.hub}-support`).getBlobClient(bundleName).downloadToBuffer()).toString();
  const bundle = JSON.parse(bundleText) as { gateway: string; config: { device_id: string } };
  assert.equal(bundle.gateway, "l5");
  assert.equal(bundle.config.device_id, "l5");
  for (const secret of [key, readFileSync(join(tree.gw("l5").dir, "identity.key"), "utf8").trim()]) assert.equal(bundleText.includes(secret), false, "a secret leaked into l5's bundle");
});

/** The root's service API with an iothubowner token (the tree's owner key). */
function service(tree: Tree, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const key = readFileSync(join(tree.root.dir, "owner.key"), "utf8").trim();
  const token = signSas({ resource: tree.hub, key, expirySecs: Math.floor(Date.now() / 1000) + 600, keyName: "iothubowner" });
  const text = body === undefined ? "" : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: tree.root.address, port: 443, ca: tree.caPem, method, path: `${path}?api-version=2021-04-12`,
      headers: { authorization: token, "content-type": "application/json", "content-length": Buffer.byteLength(text) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const raw = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, json: raw ? (JSON.parse(raw) as Record<string, unknown>) : {} });
      });
    });
    req.on("error", reject);
    req.end(text);
  });
}

/** A method on l5's $edgeAgent; while the module's link is still on its way up the chain the root answers 404. */
async function invokeBottom(tree: Tree, methodName: string, payload: unknown, deadlineMs = 30_000): Promise<{ status: number; payload: Record<string, unknown> }> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const r = await service(tree, "POST", `/twins/l5/modules/${encodeURIComponent("$edgeAgent")}/methods`, { methodName, payload, responseTimeoutInSeconds: 20 });
    if (r.status === 200) return r.json as { status: number; payload: Record<string, unknown> };
    if (r.status !== 404 || Date.now() > until) throw new Error(`method ${methodName} on l5/$edgeAgent: ${r.status} ${JSON.stringify(r.json)}`);
    // Wait for the next line any gateway logs (sync, link attach) before asking again.
    await Promise.race(["l5", "l4", "l3", "l2"].map((id) => tree.gw(id).waitForLine(() => true, 2_000, "activity", tree.gw(id).lines.length).catch(() => "")));
  }
}
