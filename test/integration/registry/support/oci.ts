import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A descriptor as OCI writes it. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
}

/** A synthetic image written into an OCI layout. */
export interface SyntheticImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
}

const LAYER = "application/vnd.oci.image.layer.v1.tar";
const CONFIG = "application/vnd.oci.image.config.v1+json";
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const INDEX = "application/vnd.oci.image.index.v1+json";

/** A one-file ustar archive (what an image layer is, uncompressed). */
export function tarOf(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, "utf8");
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(content.length.toString(8).padStart(11, "0") + "\0", 124);
  header.write("00000000000\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)]);
}

/** An OCI image layout under construction: blobs written as they are added. */
export class OciLayout {
  readonly dir: string;
  private readonly refs: { descriptor: Descriptor; tag: string }[] = [];

  constructor(dir = mkdtempSync(join(tmpdir(), "strata-oci-"))) {
    this.dir = dir;
    mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
    writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  }

  addBlob(bytes: Buffer, mediaType: string): Descriptor {
    const hex = createHash("sha256").update(bytes).digest("hex");
    writeFileSync(join(this.dir, "blobs", "sha256", hex), bytes);
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
  }

  blobPath(digest: string): string {
    return join(this.dir, "blobs", "sha256", digest.slice(7));
  }

  /** An image of `layerSizes` random-content layers for one platform. */
  addImage(layerSizes: readonly number[], platform = { os: "linux", architecture: "amd64" }): SyntheticImage {
    const tars = layerSizes.map((size, i) => tarOf(`data/layer-${i}.bin`, randomBytes(size)));
    const layers = tars.map((t) => this.addBlob(t, LAYER));
    const config = this.addBlob(Buffer.from(JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
      config: {},
    })), CONFIG);
    const manifest = this.addBlob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST, config, layers })), MANIFEST);
    return { manifest: { ...manifest, platform }, config, layers };
  }

  /** A multi-arch index over `images`. */
  addIndex(images: readonly SyntheticImage[]): Descriptor {
    return this.addBlob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: images.map((i) => i.manifest) })), INDEX);
  }

  tag(descriptor: Descriptor, tag: string): void {
    this.refs.push({ descriptor, tag });
    writeFileSync(join(this.dir, "index.json"), JSON.stringify({
      schemaVersion: 2,
      manifests: this.refs.map((r) => ({ mediaType: r.descriptor.mediaType, digest: r.descriptor.digest, size: r.descriptor.size, annotations: { "org.opencontainers.image.ref.name": r.tag } })),
    }));
  }
}

/** Runs skopeo; rejects with its stderr on failure. */
export function skopeo(args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("skopeo", ["--insecure-policy", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve({ stdout, stderr }) : reject(new Error(`skopeo ${args.join(" ")} failed (${code}): ${stderr}`))));
  });
}

/** Pushes `oci:DIR:tag` to a plain-http registry keeping every digest (all platforms of an index). */
export async function pushLayout(layout: OciLayout, tag: string, registryHostPort: string, repo: string): Promise<void> {
  await skopeo(["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", `oci:${layout.dir}:${tag}`, `docker://${registryHostPort}/${repo}:${tag}`]);
}

/** The digests of every blob in an OCI layout (what a pull left behind), for comparison with the source. */
export function layoutDigests(dir: string): string[] {
  const idx = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as { manifests: Descriptor[] };
  return idx.manifests.map((m) => m.digest);
}
