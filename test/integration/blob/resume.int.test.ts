// kill -9 of a gateway (a child process running `strata start`) in the middle of an upload: after the restart
// only the blocks the cloud lacks are sent, and the blob reaches Azurite whole.
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { buildTree, treeUnavailable } from "../../support/tree.js";
import { countingProxy, startAzurite, trustCa } from "./support.js";

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
const MiB = 1024 * 1024;

test("kill -9 mid-upload and restart: the blob reaches Azurite whole, only the missing blocks are sent again", { skip: treeUnavailable() }, async (t) => {
  const azurite = await startAzurite();
  t.after(() => azurite.stop());
  const proxy = await countingProxy(azurite.port);
  t.after(() => proxy.close());

  const key = randomBytes(64).toString("base64");
  const tree = await buildTree({ subnet: "127.66.1", gateways: [{ id: "gw-top", plugins: { blob: {} } }] });
  t.after(() => tree.cleanup());
  const gw = tree.root;
  // The plugin's secrets next to the gateway's config, then its section.
  writeFileSync(join(gw.dir, "blob.key"), key, { mode: 0o600 });
  writeFileSync(join(gw.dir, "cloud.cs"), azurite.connectionString(proxy.port), { mode: 0o600 });
  const { readFileSync } = await import("node:fs");
  const toml = readFileSync(gw.configFile, "utf8").replace(/\[plugins\.blob\]\n?/, "");
  writeFileSync(gw.configFile, `${toml}
[plugins.blob]
account_name = "edgelocal"
account_key_file = "${join(gw.dir, "blob.key")}"

[plugins.blob.upload]
enabled = true
connection_string_file = "${join(gw.dir, "cloud.cs")}"
block_bytes = ${MiB}
parallel_blocks = 2
retry_min_ms = 50
retry_max_ms = 200

[plugins.blob.upload.containers.data]
target = "%d-%c"
`);
  await gw.start();
  t.after(() => gw.kill());

  // 1. Upload 24 MiB locally; the proxy stalls the cloud after 7 blocks went through.
  trustCa(tree.caPem);
  const client = new BlobServiceClient(`https://${gw.address}:443/blob/edgelocal`, new StorageSharedKeyCredential("edgelocal", key), { retryOptions: { maxTries: 1 } });
  const body = randomBytes(24 * MiB);
  proxy.holdAfterPutBlocks = 7;
  const parked = once(proxy.events, "parked");
  await client.getContainerClient("data").create();
  await client.getContainerClient("data").getBlockBlobClient("big.bin").uploadData(body, { blockSize: 4 * MiB, maxSingleShotSize: MiB, concurrency: 2 });
  await parked;

  // 2. kill -9 while requests hang; let what reached Azurite settle, then ask it what it has.
  await gw.kill();
  proxy.holdAfterPutBlocks = undefined;
  proxy.release();
  if (proxy.inflight > 0) await once(proxy.events, "idle");
  const had = (await azurite.client.getContainerClient("gw-top-data").getBlockBlobClient("big.bin").getBlockList("uncommitted")).uncommittedBlocks ?? [];
  assert.ok(had.length >= 7 && had.length < 24, `Azurite holds ${had.length} of 24 blocks`);
  const before = proxy.counts.putBlock;

  // 3. Restart: it resumes from the cloud's uncommitted block list.
  const from = gw.lines.length;
  await gw.start();
  const line = await gw.waitForLog("blob uploaded", 60_000, from);
  assert.equal(line["blob"], "big.bin");
  const resent = proxy.counts.putBlock - before;
  t.diagnostic(`cloud had ${had.length} of 24 blocks after kill -9; ${resent} sent after the restart`);
  assert.equal(resent, 24 - had.length, `sent ${resent} blocks after the restart; the cloud already had ${had.length}`);
  assert.equal(sha(await azurite.client.getContainerClient("gw-top-data").getBlobClient("big.bin").downloadToBuffer()), sha(body));
});
