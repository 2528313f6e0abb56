import { pluginReadings, type Metrics } from "../../core/index.js";
import type { UploaderStats } from "./uploader.js";

/**
 * The upload queue on `/metrics` (read at scrape time from Uploader.stats). Returns the binder the plugin
 * calls with a reader of its running uploader; a no-op without a Metrics registry.
 */
export function blobMetrics(metrics: Metrics | undefined): (read: () => UploaderStats | undefined) => void {
  if (!metrics) return () => {};
  const bind = pluginReadings<UploaderStats | undefined>(metrics, "blob", (read) => {
    const value = (pick: (s: UploaderStats) => number) => () => { const s = read(); return s ? pick(s) : 0; };
    metrics.gaugeFn("strata_blob_upload_queue", "Blobs waiting to be uploaded to the cloud (the one uploading included)", [], value((s) => s.pending));
    metrics.counterFn("strata_blob_uploaded_total", "Blobs uploaded to the cloud", [], value((s) => s.blobsUploaded));
    metrics.counterFn("strata_blob_upload_blocks_total", "Blocks of uploads: sent, or skipped on a resume because the cloud had them", ["outcome"], () => {
      const s = read();
      return [[{ outcome: "sent" }, s?.blocksSent ?? 0], [{ outcome: "skipped" }, s?.blocksSkipped ?? 0]];
    });
    metrics.counterFn("strata_blob_upload_failures_total", "Upload attempts that failed (retried with backoff; nothing dropped)", [], value((s) => s.failures));
  });
  return (read) => bind(read);
}
