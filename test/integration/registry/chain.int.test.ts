import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import httpsFront from "../../../plugins/https-front/index.js";
import { needPeer } from "../../support/peers.js";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";
import { startDistribution, type Distribution } from "./support/distribution.js";
import { OciLayout, pushLayout, type SyntheticImage } from "./support/oci.js";
import { fetchFront, pullThrough, secretFile, startCacheGateway, startFrontChild } from "./support/harness.js";

const skip = needPeer("docker-registry") || needPeer("skopeo");

function pulledDigest(dir: string): string {
  return (JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as { manifests: { digest: string }[] }).manifests[0]!.digest;
}

describe("https-front: a 5-gateway chain with the cache on the root", { skip }, () => {
  let upstream: Distribution;
  const chain: TestGateway[] = [];
  let img: SyntheticImage;
  let index: string;

  before(async () => {
    upstream = await startDistribution();
    const layout = new OciLayout();
    img = layout.addImage([1 << 20, 512 << 10, 256 << 10]);
    layout.tag(img.manifest, "v1");
    const amd = layout.addImage([300_000], { os: "linux", architecture: "amd64" });
    const arm = layout.addImage([300_000], { os: "linux", architecture: "arm64" });
    index = layout.addIndex([amd, arm]).digest;
    layout.tag({ mediaType: "application/vnd.oci.image.index.v1+json", digest: index, size: readFileSync(layout.blobPath(index)).length }, "multi");
    await pushLayout(layout, "v1", upstream.hostPort, "plant/chain");
    await pushLayout(layout, "multi", upstream.hostPort, "plant/chain-multi");
    chain.push(await startCacheGateway(upstream.url));
    for (let i = 2; i <= 5; i++) chain.push(await startFrontChild(chain[chain.length - 1]!, `gw${i}`));
  });
  after(async () => {
    for (const g of [...chain].reverse()) await g.stop({ remove: true });
    await upstream?.close();
  });

  test("skopeo pulls an image and a multi-arch index at the bottom; 10 concurrent cold pulls make one upstream GET per blob", async () => {
    const bottom = chain[4]!;
    const host = `127.0.0.1:${bottom.port("https")}`;
    const outs = await Promise.all(Array.from({ length: 10 }, () => pullThrough(host, bottom.caPem, "plant/chain:v1")));
    for (const out of outs) assert.equal(pulledDigest(out), img.manifest.digest);
    for (const b of [img.config, ...img.layers]) assert.equal(upstream.blobGets(b.digest), 1, `one upstream GET of ${b.digest}`);
    const multi = await pullThrough(host, bottom.caPem, "plant/chain-multi:multi");
    assert.equal(pulledDigest(multi), index);
    // A second pull at the bottom makes no upstream blob GET.
    const gets = upstream.blobGets();
    await pullThrough(host, bottom.caPem, "plant/chain:v1");
    assert.equal(upstream.blobGets(), gets);
  });

  test("Range and the client's Authorization travel through every front; no credentials is the root's 401", async () => {
    const bottom = chain[4]!;
    const layer = img.layers[0]!;
    const r = await fetchFront(bottom.port("https"), bottom.caPem, `/v2/plant/chain/blobs/${layer.digest}`, { headers: { range: "bytes=5-14" } });
    assert.equal(r.status, 206);
    assert.equal(r.body.length, 10);
    assert.equal(r.headers["content-range"], `bytes 5-14/${layer.size}`);
    const anon = await fetchFront(bottom.port("https"), bottom.caPem, "/v2/", { auth: null });
    assert.equal(anon.status, 401);
    assert.match(String(anon.headers["www-authenticate"]), /^Basic realm=/);
  });

  test("a parent that is down: 502 naming the reason", async () => {
    const dead = await startTestGateway({
      deviceId: "gw-dead",
      extraPlugins: [{ module: httpsFront, settings: { timeout_ms: 2000 } }],
      config: {
        service: undefined,
        identity: { key_file: secretFile("a2V5") },
        parent: { hostname: "localhost", address: "127.0.0.1", https_port: 9, amqp_port: 9, transport: "amqps" },
      },
    });
    try {
      const r = await fetchFront(dead.port("https"), dead.caPem, "/v2/");
      assert.equal(r.status, 502);
      assert.match(r.body.toString(), /refused the connection/);
    } finally {
      await dead.stop({ remove: true });
    }
  });

  test("/parent/ passes only allow-listed paths; the service API cannot be allow-listed by default", async () => {
    const child = await startFrontChild(chain[0]!, "gw-pass", { parent_paths: ["/v2"] });
    try {
      const ok = await fetchFront(child.port("https"), child.caPem, "/parent/v2/");
      assert.equal(ok.status, 200);
      const refused = await fetchFront(child.port("https"), child.caPem, "/parent/devices/x");
      assert.equal(refused.status, 403);
    } finally {
      await child.stop({ remove: true });
    }
    await assert.rejects(startFrontChild(chain[0]!, "gw-bad", { parent_paths: ["/devices"] }), /plugins\.https-front\.parent_paths/);
  });
});
