// `strata images prefetch` as an operator runs it: the real CLI process on the bottom gateway of a 3-gateway
// chain of real `strata start` processes (root cache → l2 cache + front → l3 front only), Distribution upstream.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { needPeer } from "../../support/peers.js";
import { buildTree, CLI, treeUnavailable, type Tree } from "../../support/tree.js";
import { startDistribution, type Distribution } from "./support/distribution.js";
import { OciLayout, pushLayout, type SyntheticImage } from "./support/oci.js";
import { PULL_PASSWORD, PULL_USER, pullThrough, secretFile } from "./support/harness.js";

const skip = treeUnavailable() ?? (needPeer("docker-registry") || needPeer("skopeo"));

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout!.on("data", (d) => (stdout += String(d)));
    proc.stderr!.on("data", (d) => (stderr += String(d)));
    proc.once("error", reject);
    proc.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("strata images prefetch at the bottom of a chain", { skip }, () => {
  let upstream: Distribution;
  let tree: Tree;
  let img: SyntheticImage;
  let platforms: SyntheticImage[];
  let index: string;

  before(async () => {
    upstream = await startDistribution();
    const layout = new OciLayout();
    img = layout.addImage([1 << 20, 512 << 10, 256 << 10]);
    layout.tag(img.manifest, "v1");
    platforms = [layout.addImage([200_000], { os: "linux", architecture: "amd64" }), layout.addImage([200_000], { os: "linux", architecture: "arm64" })];
    index = layout.addIndex(platforms).digest;
    layout.tag({ mediaType: "application/vnd.oci.image.index.v1+json", digest: index, size: readFileSync(layout.blobPath(index)).length }, "multi");
    await pushLayout(layout, "v1", upstream.hostPort, "plant/pre");
    await pushLayout(layout, "multi", upstream.hostPort, "plant/pre-multi");
    const pullUsers = [{ username: PULL_USER, password_file: secretFile(PULL_PASSWORD) }];
    tree = await buildTree({
      subnet: "127.79.1",
      gateways: [
        { id: "root", plugins: { "registry-cache": { upstreams: { origin: { url: upstream.url } }, pull_users: pullUsers } } },
        // l2 caches too: its default upstream is the root's front, as itself.
        { id: "l2", parent: "root", plugins: { "registry-cache": { pull_users: pullUsers }, "https-front": {} } },
        { id: "l3", parent: "l2", plugins: { "https-front": {} } },
      ],
    });
    await tree.startAll();
  });
  after(async () => {
    await tree?.cleanup();
    await upstream?.close();
  });

  const cached = (gw: string, digest: string): boolean =>
    existsSync(join(tree.gw(gw).dir, "data", "plugins", "registry-cache", "blobs", "sha256", digest.slice("sha256:".length)));

  test("pulls every blob into the caches on the way with progress; a later pull at the bottom makes no upstream blob GET", async () => {
    const r = await cli(["images", "prefetch", "plant/pre:v1", "plant/pre-multi:multi", "--config", tree.gw("l3").configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /plant\/pre:v1: 1 manifest\(s\), 4 blob\(s\)/);
    assert.match(r.stdout, /\[#{24}\] 100% \[4\/4\] sha256:/);
    assert.match(r.stdout, /plant\/pre-multi:multi: 2 manifest\(s\), 4 blob\(s\)/);
    assert.match(r.stdout, /prefetched 2 image\(s\)/);
    const blobs = [img, ...platforms].flatMap((i) => [i.config, ...i.layers]);
    for (const b of blobs) {
      assert.ok(cached("root", b.digest), `root keeps ${b.digest}`);
      assert.ok(cached("l2", b.digest), `l2 keeps ${b.digest}`);
      assert.equal(upstream.blobGets(b.digest), 1, `one upstream GET of ${b.digest}`);
    }
    for (const m of [img.manifest, ...platforms.map((p) => p.manifest)]) assert.ok(cached("l2", m.digest), `l2 keeps manifest ${m.digest}`);
    assert.ok(cached("l2", index), "l2 keeps the index");

    const gets = upstream.blobGets();
    const out = await pullThrough(`${tree.gw("l3").address}:443`, tree.caPem, "plant/pre:v1");
    const pulled = (JSON.parse(readFileSync(join(out, "index.json"), "utf8")) as { manifests: { digest: string }[] }).manifests[0]!.digest;
    assert.equal(pulled, img.manifest.digest);
    assert.equal(upstream.blobGets(), gets, "no upstream blob GET after the prefetch");
  });

  test("an unknown or malformed ref fails with exit 1 and an error naming the ref; the good ones are still pulled", async () => {
    const r = await cli(["images", "prefetch", "plant/nope:v9", "Plant/Bad Ref", "plant/pre:v1", "--config", tree.gw("l3").configFile]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /failed for 2 of 3 image\(s\)/);
    assert.match(r.stderr, /plant\/nope:v9: GET \/v2\/plant\/nope\/manifests\/v9 answered 404: MANIFEST_UNKNOWN/);
    assert.match(r.stderr, /Plant\/Bad Ref: "Plant\/Bad Ref" is not an image reference/);
    assert.match(r.stdout, /plant\/pre:v1: done/);
  });
});
