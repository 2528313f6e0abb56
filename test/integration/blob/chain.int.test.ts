// @azure/storage-blob at the bottom of a chain of five gateways (child processes on 127.66.2.x:443): requests
// cross four https-fronts to the top's blob plugin, which uploads to Azurite under the mapped names.
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { buildTree, treeUnavailable } from "../../support/tree.js";
import { startAzurite, trustCa } from "./support.js";

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
const MiB = 1024 * 1024;
const skip = treeUnavailable();

test("a 5-gateway chain: container, 64 MiB in blocks and small blobs from the bottom; list, download; all in Azurite from the top", { skip }, async (t) => {
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
      { id: "top", plugins: { blob: { account_name: "edgelocal", account_key_file: join(secrets, "blob.key"), upload: { enabled: true, connection_string_file: join(secrets, "cloud.cs"), containers: { telemetry: { target: "%d-%c" } } } } } },
      { id: "l2", parent: "top", plugins: front },
      { id: "l3", parent: "l2", plugins: front },
      { id: "l4", parent: "l3", plugins: front },
      { id: "l5", parent: "l4", plugins: front },
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
});
