import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { needPeer } from "../../support/peers.js";
import type { TestGateway } from "../../support/gateway.js";
import { startDistribution, type Distribution } from "./support/distribution.js";
import { OciLayout, pushLayout, type SyntheticImage } from "./support/oci.js";
import { cacheOf, fetchFront, pullThrough, startCacheGateway } from "./support/harness.js";
import { signSas } from "../../../core/index.js";

const skip = needPeer("docker-registry") || needPeer("skopeo");

function layoutBlob(dir: string, digest: string): Buffer {
  return readFileSync(join(dir, "blobs", "sha256", digest.slice(7)));
}

/** The manifest digest skopeo wrote for the pulled ref in oci:DIR:pulled. */
function pulledDigest(dir: string): string {
  const idx = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  return idx.manifests[0]!.digest;
}

describe("registry-cache: pulls through Distribution", { skip }, () => {
  let upstream: Distribution;
  let gw: TestGateway;
  let front: string;
  let single: SyntheticImage;
  let multi: { index: string; images: SyntheticImage[] };
  let cold: SyntheticImage;

  before(async () => {
    upstream = await startDistribution();
    const layout = new OciLayout();
    single = layout.addImage([1 << 20, 2 << 20, 300_000]);
    layout.tag(single.manifest, "v1");
    const amd = layout.addImage([700_000, 100_000], { os: "linux", architecture: "amd64" });
    const arm = layout.addImage([600_000, 200_000], { os: "linux", architecture: "arm64" });
    const index = layout.addIndex([amd, arm]);
    layout.tag(index, "multi");
    cold = layout.addImage([1 << 20, 1 << 20, 1 << 20]);
    layout.tag(cold.manifest, "cold");
    await pushLayout(layout, "v1", upstream.hostPort, "plant/app");
    await pushLayout(layout, "multi", upstream.hostPort, "plant/multi");
    await pushLayout(layout, "cold", upstream.hostPort, "plant/cold");
    multi = { index: index.digest, images: [amd, arm] };
    gw = await startCacheGateway(upstream.url);
    front = `127.0.0.1:${gw.port("https")}`;
  });
  after(async () => {
    await gw?.stop({ remove: true });
    await upstream?.close();
  });

  test("a cold pull with skopeo verifies, fetches each blob upstream once, and a second pull fetches none", async () => {
    const before = upstream.blobGets();
    // 1. Cold pull: every digest skopeo checks must match what was pushed.
    const out = await pullThrough(front, gw.caPem, "plant/app:v1");
    assert.equal(pulledDigest(out), single.manifest.digest);
    for (const l of single.layers) {
      assert.equal(`sha256:${createHash("sha256").update(layoutBlob(out, l.digest)).digest("hex")}`, l.digest);
    }
    // 2. One upstream GET per blob (config + 3 layers).
    const blobs = [single.config, ...single.layers];
    for (const b of blobs) assert.equal(upstream.blobGets(b.digest), 1, `one GET of ${b.digest}`);
    assert.equal(upstream.blobGets() - before, blobs.length);
    // 3. Warm pull: no blob GET upstream.
    const again = await pullThrough(front, gw.caPem, "plant/app:v1");
    assert.equal(pulledDigest(again), single.manifest.digest);
    assert.equal(upstream.blobGets() - before, blobs.length);
  });

  test("a multi-arch index pulls with every platform, digests preserved", async () => {
    const out = await pullThrough(front, gw.caPem, "plant/multi:multi");
    assert.equal(pulledDigest(out), multi.index);
    for (const img of multi.images) {
      for (const l of img.layers) assert.ok(layoutBlob(out, l.digest).length === l.size);
      assert.equal(upstream.blobGets(img.layers[0]!.digest), 1);
    }
  });

  test("10 concurrent cold pulls make one upstream GET per blob", async () => {
    const pulls = await Promise.all(Array.from({ length: 10 }, () => pullThrough(front, gw.caPem, "plant/cold:cold")));
    for (const out of pulls) assert.equal(pulledDigest(out), cold.manifest.digest);
    for (const b of [cold.config, ...cold.layers]) assert.equal(upstream.blobGets(b.digest), 1, `one GET of ${b.digest}`);
    assert.equal(cacheOf(gw).stats.rejectedFills, 0);
  });

  test("no credentials: 401 with a Basic challenge; wrong password: 401", async () => {
    const port = gw.port("https");
    const none = await fetchFront(port, gw.caPem, "/v2/", { auth: null });
    assert.equal(none.status, 401);
    assert.match(String(none.headers["www-authenticate"]), /^Basic realm="/);
    const wrong = await fetchFront(port, gw.caPem, "/v2/plant/app/manifests/v1", { auth: `Basic ${Buffer.from("puller:nope").toString("base64")}` });
    assert.equal(wrong.status, 401);
    const ok = await fetchFront(port, gw.caPem, "/v2/");
    assert.equal(ok.status, 200);
    assert.equal(ok.headers["docker-distribution-api-version"], "registry/2.0");
  });

  test("a module identity pulls with a SAS token as password; a plain device may not", async () => {
    const port = gw.port("https");
    const mod = await gw.addDevice("edge1", { moduleId: "agent" });
    const se = Math.floor(Date.now() / 1000) + 600;
    const modToken = signSas({ resource: `${gw.hubName}/devices/edge1/modules/agent`, key: mod.key, expirySecs: se });
    const okRes = await fetchFront(port, gw.caPem, "/v2/", { auth: `Basic ${Buffer.from(`edge1/agent:${modToken}`).toString("base64")}` });
    assert.equal(okRes.status, 200);
    const dev = await gw.addDevice("sensor1");
    const devToken = signSas({ resource: `${gw.hubName}/devices/sensor1`, key: dev.key, expirySecs: se });
    const refused = await fetchFront(port, gw.caPem, "/v2/", { auth: `Basic ${Buffer.from(`sensor1:${devToken}`).toString("base64")}` });
    assert.equal(refused.status, 401);
  });

  test("Range on a cached blob answers 206 with the exact bytes", async () => {
    const layer = single.layers[1]!;
    const full = await fetchFront(gw.port("https"), gw.caPem, `/v2/plant/app/blobs/${layer.digest}`);
    assert.equal(full.status, 200);
    const r = await fetchFront(gw.port("https"), gw.caPem, `/v2/plant/app/blobs/${layer.digest}`, { headers: { range: "bytes=1000-1999" } });
    assert.equal(r.status, 206);
    assert.equal(r.headers["content-range"], `bytes 1000-1999/${layer.size}`);
    assert.deepEqual(r.body, full.body.subarray(1000, 2000));
    const tail = await fetchFront(gw.port("https"), gw.caPem, `/v2/plant/app/blobs/${layer.digest}`, { headers: { range: "bytes=-10" } });
    assert.deepEqual(tail.body, full.body.subarray(full.body.length - 10));
  });

  test("HEAD on a miss asks upstream (distribution #4747) and does not fetch the blob", async () => {
    const layout = new OciLayout();
    const img = layout.addImage([50_000]);
    layout.tag(img.manifest, "head");
    await pushLayout(layout, "head", upstream.hostPort, "plant/head");
    const layer = img.layers[0]!;
    const head = await fetchFront(gw.port("https"), gw.caPem, `/v2/plant/head/blobs/${layer.digest}`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers["content-length"]), layer.size);
    assert.equal(head.headers["docker-content-digest"], layer.digest);
    assert.equal(upstream.blobGets(layer.digest), 0);
    const missing = await fetchFront(gw.port("https"), gw.caPem, `/v2/plant/head/blobs/sha256:${"0".repeat(64)}`, { method: "HEAD" });
    assert.equal(missing.status, 404);
    // A Range on a miss: served once the whole blob is verified, one upstream GET.
    const r = await fetchFront(gw.port("https"), gw.caPem, `/v2/plant/head/blobs/${layer.digest}`, { headers: { range: "bytes=10-19" } });
    assert.equal(r.status, 206);
    assert.deepEqual(r.body, layoutBlob(layout.dir, layer.digest).subarray(10, 20));
    assert.equal(upstream.blobGets(layer.digest), 1);
  });

  test("a tag is keyed by Accept: an index for multi-arch clients, 404 for a client accepting only single manifests", async () => {
    const port = gw.port("https");
    const idx = await fetchFront(port, gw.caPem, "/v2/plant/multi/manifests/multi", { headers: { accept: "application/vnd.oci.image.index.v1+json" } });
    assert.equal(idx.status, 200);
    assert.equal(idx.headers["docker-content-digest"], multi.index);
    assert.equal(idx.headers["content-type"], "application/vnd.oci.image.index.v1+json");
    const single = await fetchFront(port, gw.caPem, "/v2/plant/multi/manifests/multi", { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
    // Distribution cannot convert an OCI index into a manifest: it answers 404 for that Accept; the cache passes that on.
    assert.notEqual(single.headers["docker-content-digest"], multi.index);
  });
});
