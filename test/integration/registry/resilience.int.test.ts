import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import https from "node:https";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { needPeer } from "../../support/peers.js";
import type { TestGateway } from "../../support/gateway.js";
import { startDistribution, type Distribution } from "./support/distribution.js";
import { OciLayout, pushLayout, type SyntheticImage } from "./support/oci.js";
import { startFaultyProxy, type FaultyProxy } from "./support/faulty-proxy.js";
import { cacheOf, fetchFront, PULL_PASSWORD, PULL_USER, pullThrough, startCacheGateway } from "./support/harness.js";

const skip = needPeer("docker-registry") || needPeer("skopeo");
const AUTH = `Basic ${Buffer.from(`${PULL_USER}:${PULL_PASSWORD}`).toString("base64")}`;

interface Streamed {
  status: number;
  complete: boolean;
  body: Buffer;
  firstByteAt?: number;
}

/** GETs a blob and reports whether the transfer completed (a destroyed connection is `complete: false`). */
function streamBlob(port: number, ca: string, path: string, onFirstByte?: () => void): Promise<Streamed> {
  return new Promise((resolve) => {
    const out: Streamed = { status: 0, complete: false, body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    const req = https.request({ host: "127.0.0.1", port, path, ca, agent: false, headers: { authorization: AUTH } }, (res) => {
      out.status = res.statusCode ?? 0;
      res.on("data", (c: Buffer) => {
        if (out.firstByteAt === undefined) {
          out.firstByteAt = performance.now();
          onFirstByte?.();
        }
        chunks.push(c);
      });
      const finish = (): void => resolve({ ...out, complete: res.complete, body: Buffer.concat(chunks) });
      res.on("end", finish);
      res.on("error", finish);
      res.on("aborted", finish);
    });
    req.on("error", () => resolve({ ...out, body: Buffer.concat(chunks) }));
    req.end();
  });
}

function sha(b: Buffer): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

describe("registry-cache: a misbehaving upstream", { skip }, () => {
  let upstream: Distribution;
  let proxy: FaultyProxy;
  let gw: TestGateway;
  let layout: OciLayout;
  let img: SyntheticImage;
  let cacheDir: string;

  before(async () => {
    upstream = await startDistribution();
    layout = new OciLayout();
    img = layout.addImage([2 << 20, 1 << 20, 1 << 20, 1 << 20]);
    layout.tag(img.manifest, "v1");
    await pushLayout(layout, "v1", upstream.hostPort, "plant/faulty");
    proxy = await startFaultyProxy(upstream.url);
    gw = await startCacheGateway(proxy.url);
    cacheDir = join(gw.gw.config.data_dir, "plugins", "registry-cache");
  });
  after(async () => {
    await gw?.stop({ remove: true });
    await proxy?.close();
    await upstream?.close();
  });

  test("throttled upstream: a second client gets its first bytes before the first upstream fetch has finished", async () => {
    proxy.mode = "slow";
    const layer = img.layers[0]!;
    const path = `/v2/plant/faulty/blobs/${layer.digest}`;
    const port = gw.port("https");
    // 1. The first client starts the fill; 2. once it has bytes, a second client joins the same fill.
    let second: Promise<Streamed> | undefined;
    const joined = new Promise<void>((resolve) => {
      const first = streamBlob(port, gw.caPem, path, () => {
        second = streamBlob(port, gw.caPem, path);
        resolve();
      });
      void first.then((r) => assert.equal(sha(r.body), layer.digest));
    });
    await joined;
    const r2 = await second!;
    proxy.mode = "pass";
    assert.equal(r2.status, 200);
    assert.equal(sha(r2.body), layer.digest);
    const fetchEnded = proxy.bodyEnd.get(layer.digest);
    assert.ok(fetchEnded !== undefined && r2.firstByteAt !== undefined, `fetch ended ${fetchEnded}, first byte ${r2.firstByteAt}, ends ${[...proxy.bodyEnd.keys()].join()}`);
    assert.ok(r2.firstByteAt < fetchEnded, `second client's first byte (${r2.firstByteAt.toFixed(1)}) came before the upstream body ended (${fetchEnded.toFixed(1)})`);
    assert.equal(upstream.blobGets(layer.digest), 1);
  });

  for (const mode of ["flip", "truncate"] as const) {
    test(`an upstream that ${mode === "flip" ? "flips a byte" : "truncates"}: nothing kept, the client fails, the next good pull succeeds`, async () => {
      const layer = img.layers[mode === "flip" ? 1 : 2]!;
      const path = `/v2/plant/faulty/blobs/${layer.digest}`;
      proxy.mode = mode;
      const bad = await streamBlob(gw.port("https"), gw.caPem, path);
      assert.equal(bad.complete, false, "the client must see a failed transfer, not a short success");
      assert.ok(bad.body.length < layer.size, "the final byte is never released before verification");
      assert.equal(existsSync(join(cacheDir, "blobs", "sha256", layer.digest.slice(7))), false);
      assert.deepEqual(readdirSync(join(cacheDir, "tmp")), []);
      proxy.mode = "pass";
      const good = await streamBlob(gw.port("https"), gw.caPem, path);
      assert.equal(good.complete, true);
      assert.equal(sha(good.body), layer.digest);
      assert.equal(sha(readFileSync(join(cacheDir, "blobs", "sha256", layer.digest.slice(7)))), layer.digest);
    });
  }

  test("upstream down: a cached tag still pulls; an uncached one fails with 502", async () => {
    proxy.mode = "pass";
    await pullThrough(`127.0.0.1:${gw.port("https")}`, gw.caPem, "plant/faulty:v1");
    proxy.mode = "down";
    const staleBefore = cacheOf(gw).stats.staleTags;
    const out = await pullThrough(`127.0.0.1:${gw.port("https")}`, gw.caPem, "plant/faulty:v1");
    const idx = JSON.parse(readFileSync(join(out, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    assert.equal(idx.manifests[0]!.digest, img.manifest.digest);
    assert.ok(cacheOf(gw).stats.staleTags > staleBefore);
    const missing = await fetchFront(gw.port("https"), gw.caPem, "/v2/plant/faulty/manifests/never-cached");
    assert.equal(missing.status, 502);
    proxy.mode = "pass";
  });

  test("a gateway starts with its upstream unreachable and serves 502 until it is back", async () => {
    const tg = await startCacheGateway("http://127.0.0.1:9");
    try {
      const r = await fetchFront(tg.port("https"), tg.caPem, "/v2/plant/faulty/manifests/v1");
      assert.equal(r.status, 502);
      assert.match(r.body.toString(), /cannot be reached/);
    } finally {
      await tg.stop({ remove: true });
    }
  });
});
