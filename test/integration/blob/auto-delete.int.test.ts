import { test } from "node:test";
import assert from "node:assert/strict";
import { startBlobGateway, uploaded } from "./harness.js";
import { countingProxy, startAzurite } from "./support.js";

test("deviceAutoDelete: old blobs go, except (retainWhileUploading) those the cloud does not have yet", async (t) => {
  const azurite = await startAzurite();
  t.after(() => azurite.stop());
  const proxy = await countingProxy(azurite.port);
  t.after(() => proxy.close());
  proxy.down = true;
  const gw = await startBlobGateway(
    {
      auto_delete: { enabled: true, after_minutes: 1, retain_while_uploading: true, sweep_interval_ms: 3_600_000 },
      upload: { enabled: true, containers: { kept: { target: "%c" } }, retry_min_ms: 20, retry_max_ms: 40, timeout_ms: 2000 },
    },
    { cloudConnectionString: azurite.connectionString(proxy.port) },
  );
  t.after(() => gw.stop());
  const p = gw.plugin();
  for (const c of ["kept", "other"]) await gw.client.getContainerClient(c).create();
  await gw.client.getContainerClient("kept").getBlockBlobClient("a.txt").uploadData(Buffer.from("a"));
  await gw.client.getContainerClient("other").getBlockBlobClient("b.txt").uploadData(Buffer.from("b"));
  const later = (): number => Date.now() + 2 * 60_000;

  // 1. Not old enough yet: nothing goes.
  assert.equal(await p.sweep(Date.now()), 0);
  // 2. Old enough: the unmapped blob goes; the one still waiting for the cloud stays.
  assert.equal(await p.sweep(later()), 1);
  assert.equal(await gw.client.getContainerClient("other").getBlobClient("b.txt").exists(), false);
  assert.equal(await gw.client.getContainerClient("kept").getBlobClient("a.txt").exists(), true);
  // 3. Once the cloud has it, it may go too.
  const done = uploaded(p, "a.txt");
  proxy.down = false;
  await done;
  assert.equal(await p.sweep(later()), 1);
  assert.equal(await gw.client.getContainerClient("kept").getBlobClient("a.txt").exists(), false);
  assert.equal((await azurite.client.getContainerClient("kept").getBlobClient("a.txt").downloadToBuffer()).toString(), "a");
});
