// Plugin metrics from real use: the blob plugin's upload queue while its cloud is unreachable, the registry
// cache's misses, hits and bytes after skopeo pulls through it from a real Distribution.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TOKENS, type Metrics } from "../../../core/index.js";
import { startBlobGateway } from "../blob/harness.js";
import { AZURITE_ACCOUNT, AZURITE_KEY } from "../blob/support.js";
import { startDistribution } from "../registry/support/distribution.js";
import { pullThrough, startCacheGateway } from "../registry/support/harness.js";
import { OciLayout, pushLayout } from "../registry/support/oci.js";
import { needPeer } from "../../support/peers.js";
import { eventually, promtoolCheck } from "./helpers.js";

function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("blob: blobs waiting for an unreachable cloud are the upload queue on /metrics", { skip: needPeer("prometheus", "promtool") }, async (t) => {
  // Port 1 on loopback: nothing listens, every upload attempt fails and is retried; nothing is dropped.
  const cloud = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:1/${AZURITE_ACCOUNT};`;
  const gw = await startBlobGateway({ upload: { enabled: true, containers: { telemetry: { target: "%d-%c" } }, retry_min_ms: 50, retry_max_ms: 200 } }, { cloudConnectionString: cloud });
  t.after(() => gw.stop());
  const container = gw.client.getContainerClient("telemetry");
  await container.create();
  for (const n of ["a", "b", "c"]) await container.getBlockBlobClient(`${n}.bin`).uploadData(Buffer.from(n));
  const metrics = gw.tg.gw.container.resolve(TOKENS.Metrics) as Metrics;
  const text = await eventually("three blobs queued and an upload attempt failed", async () => {
    const body = await metrics.text();
    return sample(body, "strata_blob_upload_queue") === 3 && (sample(body, "strata_blob_upload_failures_total") ?? 0) > 0 ? body : undefined;
  });
  assert.equal(sample(text, "strata_blob_uploaded_total"), 0);
  const lint = await promtoolCheck(text);
  assert.equal(lint.code, 0, lint.output);
});

test("registry cache: a cold pull is misses and fetched bytes, a warm pull is hits", { skip: needPeer("docker-registry") || needPeer("skopeo") || needPeer("prometheus", "promtool") }, async (t) => {
  const upstream = await startDistribution();
  t.after(() => upstream.close());
  const layout = new OciLayout();
  const image = layout.addImage([200_000, 100_000]);
  layout.tag(image.manifest, "v1");
  await pushLayout(layout, "v1", upstream.hostPort, "plant/app");
  const gw = await startCacheGateway(upstream.url);
  t.after(() => gw.stop({ remove: true }));
  const front = `127.0.0.1:${gw.port("https")}`;
  const metrics = gw.gw.container.resolve(TOKENS.Metrics) as Metrics;
  await pullThrough(front, gw.caPem, "plant/app:v1");
  const cold = await metrics.text();
  const blobs = 1 + image.layers.length; // the config and each layer
  assert.equal(sample(cold, "strata_registry_cache_misses_total"), blobs);
  assert.ok(sample(cold, "strata_registry_cache_fetched_bytes_total")! >= 300_000, cold);
  await pullThrough(front, gw.caPem, "plant/app:v1");
  const warm = await metrics.text();
  assert.equal(sample(warm, "strata_registry_cache_misses_total"), blobs, "nothing fetched again");
  assert.ok(sample(warm, "strata_registry_cache_hits_total")! >= blobs, warm);
  const lint = await promtoolCheck(warm);
  assert.equal(lint.code, 0, lint.output);
});
