import { rm } from "node:fs/promises";
import type { Logger } from "../../core/index.js";
import type { DiskStore } from "./disk-store.js";

/**
 * Brings the cache under `quotaBytes` by evicting the least recently used entries. A blob that a kept
 * manifest references is never evicted (an image is never half-deleted, unlike Distribution's blob TTL,
 * #2367); evicting a manifest drops the tags that point to it and frees what it referenced for later passes.
 * Returns the bytes freed.
 */
export async function collectGarbage(store: DiskStore, quotaBytes: number, logger: Logger): Promise<number> {
  const blobs = store.listBlobs();
  let total = blobs.reduce((s, b) => s + b.size, 0);
  if (total <= quotaBytes) return 0;
  const present = new Set(blobs.map((b) => b.digest));
  const refcount = new Map<string, number>();
  const refsOf = new Map<string, string[]>();
  for (const d of present) {
    const meta = await store.manifestMeta(d);
    if (!meta) continue;
    refsOf.set(d, meta.refs);
    for (const r of meta.refs) refcount.set(r, (refcount.get(r) ?? 0) + 1);
  }
  const tags = store.listTags();
  const queue = [...blobs].sort((a, b) => a.usedAt - b.usedAt);
  let freed = 0;
  let evictedInPass = true;
  while (total > quotaBytes && evictedInPass) {
    evictedInPass = false;
    for (const b of queue) {
      if (total <= quotaBytes) break;
      if (!present.has(b.digest) || (refcount.get(b.digest) ?? 0) > 0) continue;
      await store.removeBlob(b.digest);
      present.delete(b.digest);
      total -= b.size;
      freed += b.size;
      evictedInPass = true;
      for (const r of refsOf.get(b.digest) ?? []) refcount.set(r, (refcount.get(r) ?? 1) - 1);
      for (const t of tags) if (t.entry.digest === b.digest) await rm(t.file, { force: true });
      logger.debug({ digest: b.digest, size: b.size }, "registry cache evicted");
    }
  }
  if (total > quotaBytes) {
    logger.warn({ total, quotaBytes }, "registry cache over quota: every remaining blob is referenced by a kept manifest");
  }
  return freed;
}
