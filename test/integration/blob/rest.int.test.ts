import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";
import assert from "node:assert/strict";
import { startBlobGateway, uploaded } from "./harness.js";
import { countingProxy, startAzurite } from "./support.js";

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

test("@azure/storage-blob against the gateway: containers, a 64 MiB blob in blocks, small blobs, list, download; all reach Azurite under the mapped names", async (t) => {
  const azurite = await startAzurite();
  t.after(() => azurite.stop());
  const proxy = await countingProxy(azurite.port);
  t.after(() => proxy.close());
  const gw = await startBlobGateway(
    { upload: { enabled: true, containers: { telemetry: { target: "%h-%d-%c" } }, retry_min_ms: 50, retry_max_ms: 200 } },
    { cloudConnectionString: azurite.connectionString(proxy.port) },
  );
  t.after(() => gw.stop());

  // 1. Containers: create, duplicate refused, list with metadata.
  const container = gw.client.getContainerClient("telemetry");
  await container.create({ metadata: { line: "a" } });
  await assert.rejects(container.create(), (e: { statusCode?: number; code?: string }) => e.statusCode === 409 && e.code === "ContainerAlreadyExists");
  await gw.client.getContainerClient("scratch").create();
  const names: string[] = [];
  for await (const c of gw.client.listContainers({ includeMetadata: true })) names.push(c.name);
  assert.deepEqual(names, ["scratch", "telemetry"]);
  assert.equal((await container.getProperties()).metadata?.["line"], "a");

  // 2. A 64 MiB blob in 4 MiB blocks (Put Block × 16 + Put Block List), and small blobs by Put Blob.
  const big = randomBytes(64 * 1024 * 1024);
  const bigDone = uploaded(gw.plugin(), "big.bin");
  await container.getBlockBlobClient("big.bin").uploadData(big, { blockSize: 4 * 1024 * 1024, maxSingleShotSize: 1024 * 1024, concurrency: 4, blobHTTPHeaders: { blobContentType: "application/x-test" }, metadata: { kind: "big" } });
  const small = new Map<string, Buffer>();
  for (let i = 0; i < 5; i++) {
    const body = randomBytes(1000 + i);
    small.set(`dir/small-${i}.bin`, body);
    await container.getBlockBlobClient(`dir/small-${i}.bin`).uploadData(body);
  }
  const committed = await container.getBlockBlobClient("big.bin").getBlockList("committed");
  assert.equal(committed.committedBlocks?.length, 16);

  // 3. List (flat and by hierarchy), properties, download and verify.
  const listed: string[] = [];
  for await (const b of container.listBlobsFlat({ includeMetadata: true })) listed.push(`${b.name}:${b.properties.contentLength}`);
  assert.deepEqual(listed, ["big.bin:67108864", ...[0, 1, 2, 3, 4].map((i) => `dir/small-${i}.bin:${1000 + i}`)]);
  const top: string[] = [];
  for await (const item of container.listBlobsByHierarchy("/")) top.push(item.kind === "prefix" ? `prefix:${item.name}` : item.name);
  assert.deepEqual(top.sort(), ["big.bin", "prefix:dir/"]);
  const props = await container.getBlobClient("big.bin").getProperties();
  assert.equal(props.contentLength, big.length);
  assert.equal(props.contentType, "application/x-test");
  assert.equal(props.metadata?.["kind"], "big");
  assert.equal(sha(await container.getBlobClient("big.bin").downloadToBuffer(undefined, undefined, { blockSize: 8 * 1024 * 1024, concurrency: 4 })), sha(big));
  const ranged = await container.getBlobClient("big.bin").downloadToBuffer(1000, 5000);
  assert.ok(ranged.equals(big.subarray(1000, 6000)));
  for (const [name, body] of small) assert.ok((await container.getBlobClient(name).downloadToBuffer()).equals(body));

  // 4. Azurite has them under "%h-%d-%c" = testhub-gw-root-telemetry, whole; "scratch" is not mapped.
  assert.equal(await bigDone, "testhub-gw-root-telemetry");
  const cloud = azurite.client.getContainerClient("testhub-gw-root-telemetry");
  assert.equal(sha(await cloud.getBlobClient("big.bin").downloadToBuffer()), sha(big));
  assert.equal((await cloud.getBlobClient("big.bin").getProperties()).metadata?.["kind"], "big");
  const up = gw.plugin().uploader!;
  while (up.stats.pending > 0) await uploaded(gw.plugin());
  for (const [name, body] of small) assert.ok((await cloud.getBlobClient(name).downloadToBuffer()).equals(body), name);
  assert.equal(proxy.counts.putBlock, 16 + 5, "one Put Block per 4 MiB part and one per small blob, none sent twice");
  const cloudContainers: string[] = [];
  for await (const c of azurite.client.listContainers()) cloudContainers.push(c.name);
  assert.deepEqual(cloudContainers, ["testhub-gw-root-telemetry"]);

  // 5. Delete a blob and a container.
  await container.getBlobClient("dir/small-0.bin").delete();
  assert.equal(await container.getBlobClient("dir/small-0.bin").exists(), false);
  await gw.client.getContainerClient("scratch").delete();
  assert.equal(await gw.client.getContainerClient("scratch").exists(), false);
});

test("cloud unreachable for a while: the upload is retried with backoff and arrives whole when it returns", async (t) => {
  const azurite = await startAzurite();
  t.after(() => azurite.stop());
  const proxy = await countingProxy(azurite.port);
  t.after(() => proxy.close());
  const gw = await startBlobGateway(
    { upload: { enabled: true, containers: { logs: { target: "up-%c" } }, retry_min_ms: 20, retry_max_ms: 100, timeout_ms: 2000, block_bytes: 1024 * 1024 } },
    { cloudConnectionString: azurite.connectionString(proxy.port) },
  );
  t.after(() => gw.stop());
  const up = gw.plugin().uploader!;
  proxy.down = true;
  const body = randomBytes(5 * 1024 * 1024 + 17);
  await gw.client.getContainerClient("logs").create();
  let failures = 0;
  const threeFailures = new Promise<void>((resolve) => {
    up.on("failed", () => {
      if (++failures === 3) resolve();
    });
  });
  const done = uploaded(gw.plugin(), "x.bin");
  // 1. Written locally while the cloud is away: the device does not notice.
  await gw.client.getContainerClient("logs").getBlockBlobClient("x.bin").uploadData(body);
  await threeFailures;
  assert.equal(up.isPending("logs", "x.bin"), true);
  // 2. The cloud returns: the retry sends it.
  proxy.down = false;
  assert.equal(await done, "up-logs");
  assert.ok((await azurite.client.getContainerClient("up-logs").getBlobClient("x.bin").downloadToBuffer()).equals(body));
  assert.equal(up.stats.pending, 0);
});

test("deleteAfterUpload removes the local copy once the cloud committed it; NewestFirst goes newest first", async (t) => {
  const azurite = await startAzurite();
  t.after(() => azurite.stop());
  const proxy = await countingProxy(azurite.port);
  t.after(() => proxy.close());
  proxy.down = true; // hold uploads back until every blob is written, so the order is the uploader's choice
  const gw = await startBlobGateway(
    { upload: { enabled: true, order: "NewestFirst", delete_after_upload: true, containers: { queue: { target: "%c" } }, retry_min_ms: 20, retry_max_ms: 40, timeout_ms: 2000 } },
    { cloudConnectionString: azurite.connectionString(proxy.port) },
  );
  t.after(() => gw.stop());
  const q = gw.client.getContainerClient("queue");
  await q.create();
  const failed = new Promise((r) => gw.plugin().uploader!.once("failed", r));
  for (const n of ["a", "b", "c"]) await q.getBlockBlobClient(n).uploadData(Buffer.from(n));
  await failed;
  const order: string[] = [];
  gw.plugin().uploader!.on("uploaded", (m: { name: string }) => order.push(m.name));
  proxy.down = false;
  while (order.length < 3) await uploaded(gw.plugin());
  assert.deepEqual(order, ["c", "b", "a"]);
  assert.equal(await q.getBlobClient("a").exists(), false);
  assert.equal((await azurite.client.getContainerClient("queue").getBlobClient("a").downloadToBuffer()).toString(), "a");
});
