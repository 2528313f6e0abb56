import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { open, readFile, rename, rm, utimes, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";

/** What is kept next to a cached manifest: how to serve it and what it keeps alive. */
export interface ManifestMeta {
  mediaType: string;
  size: number;
  /** Digests it references (config, layers, child manifests). */
  refs: string[];
}

/** A kept blob opened for reading: the handle (the caller closes it) and its size. */
export interface OpenBlob {
  fh: FileHandle;
  size: number;
}

/** How stale a blob's mtime (the LRU clock) may get before a read touches it: GC order needs no finer grain. */
const TOUCH_EVERY_MS = 60_000;

/** A cached tag resolution for one Accept set. */
export interface TagEntry {
  upstream: string;
  repo: string;
  tag: string;
  acceptKey: string;
  digest: string;
  mediaType: string;
  /** When upstream last confirmed it (ms). */
  checkedAt: number;
}

/**
 * The cache on disk, content-addressed:
 * `blobs/sha256/<hex>` (blobs and manifests alike), `manifests/<hex>.json` (ManifestMeta),
 * `tags/<upstream>/<hash of repo, tag, accept set>.json` (TagEntry), `tmp/` (fills in progress).
 * Nothing reaches `blobs/` but through verifiedRename() or putVerified(); mtime is the LRU clock.
 */
export class DiskStore {
  readonly blobDir: string;
  readonly tmpDir: string;
  private readonly manifestDir: string;
  private readonly tagDir: string;
  private tmpSeq = 0;

  constructor(readonly root: string) {
    this.blobDir = join(root, "blobs", "sha256");
    this.tmpDir = join(root, "tmp");
    this.manifestDir = join(root, "manifests");
    this.tagDir = join(root, "tags");
  }

  /** Creates the folders and drops leftovers of fills a crash interrupted (never verified, never kept). */
  init(): void {
    for (const d of [this.blobDir, this.manifestDir, this.tagDir]) mkdirSync(d, { recursive: true });
    rmSync(this.tmpDir, { recursive: true, force: true });
    mkdirSync(this.tmpDir, { recursive: true });
  }

  blobPath(digest: string): string {
    return join(this.blobDir, digest.slice("sha256:".length));
  }

  tmpPath(digest: string): string {
    return join(this.tmpDir, `${digest.slice(7, 23)}.${process.pid}.${++this.tmpSeq}`);
  }

  has(digest: string): boolean {
    return existsSync(this.blobPath(digest));
  }

  /**
   * Opens a kept blob for reading, or undefined when it is not kept; touches its mtime (the LRU clock) when
   * older than a minute. One open and one fstat: the warm path's only syscalls before the reads.
   */
  async openBlob(digest: string): Promise<OpenBlob | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(this.blobPath(digest), "r");
    } catch {
      return undefined;
    }
    try {
      const st = await fh.stat();
      if (Date.now() - st.mtimeMs > TOUCH_EVERY_MS) {
        const now = new Date();
        await fh.utimes(now, now);
      }
      return { fh, size: st.size };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Marks a blob used now (the LRU clock); a blob the GC removed meanwhile is no error. */
  async touch(digest: string): Promise<void> {
    const now = new Date();
    await utimes(this.blobPath(digest), now, now).catch(() => undefined);
  }

  /** Moves a verified, fsync'd temp file into place and makes the rename durable. */
  async verifiedRename(tmp: string, digest: string): Promise<void> {
    await rename(tmp, this.blobPath(digest));
    await syncDir(this.blobDir);
  }

  /** Keeps bytes already verified against `digest` (a manifest): temp → fsync → rename. */
  async putVerified(digest: string, bytes: Buffer): Promise<void> {
    const tmp = this.tmpPath(digest);
    const fh = await open(tmp, "wx");
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.verifiedRename(tmp, digest);
  }

  async putManifestMeta(digest: string, meta: ManifestMeta): Promise<void> {
    await writeAtomic(join(this.manifestDir, `${digest.slice(7)}.json`), JSON.stringify(meta));
  }

  async manifestMeta(digest: string): Promise<ManifestMeta | undefined> {
    try {
      return JSON.parse(await readFile(join(this.manifestDir, `${digest.slice(7)}.json`), "utf8")) as ManifestMeta;
    } catch {
      return undefined;
    }
  }

  async readBlob(digest: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.blobPath(digest));
    } catch {
      return undefined;
    }
  }

  private tagPath(upstream: string, repo: string, tag: string, acceptKey: string): string {
    const h = createHash("sha256").update(`${repo}\n${tag}\n${acceptKey}`).digest("hex").slice(0, 40);
    return join(this.tagDir, upstream, `${h}.json`);
  }

  async getTag(upstream: string, repo: string, tag: string, acceptKey: string): Promise<TagEntry | undefined> {
    try {
      return JSON.parse(await readFile(this.tagPath(upstream, repo, tag, acceptKey), "utf8")) as TagEntry;
    } catch {
      return undefined;
    }
  }

  async putTag(entry: TagEntry): Promise<void> {
    const p = this.tagPath(entry.upstream, entry.repo, entry.tag, entry.acceptKey);
    mkdirSync(join(this.tagDir, entry.upstream), { recursive: true });
    await writeAtomic(p, JSON.stringify(entry));
  }

  /** Every cached blob (manifests included) with size and last use. */
  listBlobs(): { digest: string; size: number; usedAt: number }[] {
    const out: { digest: string; size: number; usedAt: number }[] = [];
    for (const name of readdirSync(this.blobDir)) {
      try {
        const st = statSync(join(this.blobDir, name));
        out.push({ digest: `sha256:${name}`, size: st.size, usedAt: st.mtimeMs });
      } catch {
        // removed meanwhile
      }
    }
    return out;
  }

  /** Every tag entry with its file (the GC drops entries whose manifest it evicts). */
  listTags(): { file: string; entry: TagEntry }[] {
    const out: { file: string; entry: TagEntry }[] = [];
    for (const up of readdirSync(this.tagDir)) {
      for (const f of readdirSync(join(this.tagDir, up))) {
        const file = join(this.tagDir, up, f);
        try {
          out.push({ file, entry: JSON.parse(readFileSync(file, "utf8")) as TagEntry });
        } catch {
          // half-written or removed: ignored
        }
      }
    }
    return out;
  }

  async removeBlob(digest: string): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
    await rm(join(this.manifestDir, `${digest.slice(7)}.json`), { force: true });
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
