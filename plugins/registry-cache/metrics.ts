import { pluginReadings, type Metrics } from "../../core/index.js";
import type { CacheStats } from "./cache.js";

/**
 * The cache's counters on `/metrics` (read at scrape time from RegistryCache.stats). Returns the binder the
 * plugin calls with a reader of its running cache; a no-op without a Metrics registry.
 */
export function registryCacheMetrics(metrics: Metrics | undefined): (read: () => CacheStats | undefined) => void {
  if (!metrics) return () => {};
  const bind = pluginReadings<CacheStats | undefined>(metrics, "registry-cache", (read) => {
    const value = (pick: (s: CacheStats) => number) => () => { const s = read(); return s ? pick(s) : 0; };
    metrics.counterFn("strata_registry_cache_hits_total", "Blob requests served from the cache", [], value((s) => s.blobHits));
    metrics.counterFn("strata_registry_cache_misses_total", "Blobs fetched upstream on a miss (one fetch however many clients asked)", [], value((s) => s.upstreamBlobFetches));
    metrics.counterFn("strata_registry_cache_fetched_bytes_total", "Bytes fetched upstream, verified and kept", [], value((s) => s.upstreamBlobBytes));
    metrics.counterFn("strata_registry_cache_rejected_fills_total", "Upstream fills that failed or did not match their digest (nothing kept)", [], value((s) => s.rejectedFills));
    metrics.counterFn("strata_registry_cache_stale_tags_total", "Tags served from the cache because upstream could not answer", [], value((s) => s.staleTags));
  });
  return (read) => bind(read);
}
