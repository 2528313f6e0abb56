import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../../core/index.js";
import { DiskStore } from "../../../plugins/registry-cache/disk-store.js";
import { collectGarbage } from "../../../plugins/registry-cache/gc.js";

function digestOf(b: Buffer): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

async function put(store: DiskStore, bytes: Buffer, ageSecs: number): Promise<string> {
  const d = digestOf(bytes);
  await store.putVerified(d, bytes);
  const t = Date.now() / 1000 - ageSecs;
  utimesSync(store.blobPath(d), t, t);
  return d;
}

test("GC evicts least recently used first, never a blob a kept manifest references, and drops tags of evicted manifests", async () => {
  const store = new DiskStore(mkdtempSync(join(tmpdir(), "strata-gc-")));
  store.init();
  const kib = (n: number, fill: number): Buffer => Buffer.alloc(n * 1024, fill);
  // The oldest blob is a layer of a kept manifest; a loose blob is newer; the manifest itself is newest.
  const layer = await put(store, kib(400, 1), 1000);
  const loose = await put(store, kib(400, 2), 500);
  const manifestBytes = Buffer.from(JSON.stringify({ layers: [{ digest: layer }] }));
  const manifest = await put(store, manifestBytes, 10);
  await store.putManifestMeta(manifest, { mediaType: "application/vnd.oci.image.manifest.v1+json", size: manifestBytes.length, refs: [layer] });
  await store.putTag({ upstream: "u", repo: "r", tag: "t", acceptKey: "k", digest: manifest, mediaType: "x", checkedAt: 0 });
  // 1. Over quota by one blob: the loose blob goes, the older referenced layer stays.
  await collectGarbage(store, 500 * 1024, silentLogger());
  assert.equal(store.has(loose), false);
  assert.equal(store.has(layer), true);
  assert.equal(store.has(manifest), true);
  // 2. Under a tiny quota: the manifest goes first (with its tag), which frees its layer.
  await collectGarbage(store, 1, silentLogger());
  assert.equal(store.has(manifest), false);
  assert.equal(store.has(layer), false);
  assert.equal(await store.getTag("u", "r", "t", "k"), undefined);
});
