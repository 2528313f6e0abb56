import { createHash, randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { StrataError } from "../../core/index.js";
import { streamToTemp, syncDir, uniqueName, writeFileDurable } from "./fsutil.js";

/** HTTP properties a client sets on a blob (`x-ms-blob-content-*`). */
export interface BlobHttpProps {
  contentType?: string;
  contentEncoding?: string;
  contentLanguage?: string;
  contentMD5?: string;
  cacheControl?: string;
  contentDisposition?: string;
}

export interface CommittedBlock {
  /** The client's block id ("" for a blob written by one Put Blob). */
  id: string;
  size: number;
  /** File under the blob's folder holding the bytes. */
  file: string;
}

export interface BlobMeta extends BlobHttpProps {
  container: string;
  name: string;
  etag: string;
  created: number;
  modified: number;
  size: number;
  metadata: Record<string, string>;
  blocks: CommittedBlock[];
  /** The etag of the version the cloud has committed (upload done for that version). */
  uploadedEtag?: string;
}

export interface ContainerMeta {
  name: string;
  etag: string;
  created: number;
  modified: number;
  metadata: Record<string, string>;
}

export interface StagedBlock {
  id: string;
  size: number;
}

/** Quota refusal details: `willFree` is true when pending uploads with delete-after-upload will make room. */
export class QuotaError extends StrataError {
  constructor(readonly used: number, readonly quota: number, readonly willFree: boolean) {
    super("STRATA_BLOB_QUOTA", `blob store is full (${used} of ${quota} bytes, [plugins.blob] quota_bytes); ${willFree ? "uploads in progress will free space, retry later" : "delete blobs or raise quota_bytes"}`);
  }
}

const hash = (s: string): string => createHash("sha256").update(s).digest("hex");
const newEtag = (): string => `"0x${Date.now().toString(16).toUpperCase()}${randomBytes(4).toString("hex").toUpperCase()}"`;

/**
 * The local blob store under `<data_dir>/plugins/blob`: one folder per container, one per blob (named by the
 * hash of its name, so no name reaches outside), block content in files, meta written temp → fsync → rename.
 * Emits "committed" (meta) when a blob version becomes visible and "deleted" (container, name).
 */
export class BlobStore extends EventEmitter {
  private used = 0;
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Predicate set by the uploader: whether uploads pending now will free space when done. */
  willFree: () => boolean = () => false;

  constructor(readonly root: string, private readonly quota: number) {
    super();
  }

  private get tmp(): string {
    return join(this.root, "tmp");
  }
  private containerDir(c: string): string {
    return join(this.root, "containers", c);
  }
  private blobDir(c: string, name: string): string {
    return join(this.containerDir(c), "blobs", hash(name));
  }

  async open(): Promise<void> {
    await rm(this.tmp, { recursive: true, force: true });
    await mkdir(this.tmp, { recursive: true, mode: 0o700 });
    await mkdir(join(this.root, "containers"), { recursive: true });
    this.used = await duSum(join(this.root, "containers"));
  }

  usedBytes(): number {
    return this.used;
  }
  quotaBytes(): number {
    return this.quota;
  }

  /** Refuses `bytes` more when they would pass the quota. */
  meter(bytes: number): void {
    if (this.used + bytes > this.quota) throw new QuotaError(this.used, this.quota, this.willFree());
    this.used += bytes;
  }
  private release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  /** Streams a body into a fsynced temp file, counting it against the quota (released again on failure). */
  private async toTemp(body: Readable): Promise<{ path: string; size: number }> {
    let metered = 0;
    try {
      return await streamToTemp(body, this.tmp, (n) => {
        this.meter(n);
        metered += n;
      });
    } catch (err) {
      this.release(metered);
      throw err;
    }
  }

  /** Runs `fn` alone for `key` (one writer per blob / container). */
  private async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(() => undefined, () => undefined);
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }

  // ---- containers ----------------------------------------------------------------------------------------

  async listContainers(): Promise<ContainerMeta[]> {
    const names = await readdir(join(this.root, "containers")).catch(() => [] as string[]);
    const out: ContainerMeta[] = [];
    for (const n of names.sort()) {
      const c = await this.getContainer(n);
      if (c) out.push(c);
    }
    return out;
  }

  async getContainer(name: string): Promise<ContainerMeta | undefined> {
    return readJson<ContainerMeta>(join(this.containerDir(name), "container.json"));
  }

  /** False when it already exists. */
  async createContainer(name: string, metadata: Record<string, string>): Promise<ContainerMeta | false> {
    return this.locked(`c:${name}`, async () => {
      if (await this.getContainer(name)) return false;
      const now = Date.now();
      const meta: ContainerMeta = { name, etag: newEtag(), created: now, modified: now, metadata };
      await mkdir(join(this.containerDir(name), "blobs"), { recursive: true });
      await writeFileDurable(join(this.containerDir(name), "container.json"), JSON.stringify(meta), this.tmp);
      return meta;
    });
  }

  async setContainerMetadata(name: string, metadata: Record<string, string>): Promise<ContainerMeta | undefined> {
    return this.locked(`c:${name}`, async () => {
      const c = await this.getContainer(name);
      if (!c) return undefined;
      const next = { ...c, metadata, etag: newEtag(), modified: Date.now() };
      await writeFileDurable(join(this.containerDir(name), "container.json"), JSON.stringify(next), this.tmp);
      return next;
    });
  }

  async deleteContainer(name: string): Promise<boolean> {
    return this.locked(`c:${name}`, async () => {
      if (!(await this.getContainer(name))) return false;
      // Rename first: the container disappears atomically, then its files go.
      const gone = join(this.tmp, `gone-${uniqueName()}`);
      await rename(this.containerDir(name), gone);
      const bytes = await duSum(gone);
      await rm(gone, { recursive: true, force: true });
      this.release(bytes);
      this.emit("containerDeleted", name);
      return true;
    });
  }

  // ---- blobs ---------------------------------------------------------------------------------------------

  async getBlob(container: string, name: string): Promise<BlobMeta | undefined> {
    return readJson<BlobMeta>(join(this.blobDir(container, name), "meta.json"));
  }

  /** Every blob of a container, sorted by name. */
  async listBlobs(container: string): Promise<BlobMeta[]> {
    const dir = join(this.containerDir(container), "blobs");
    const hashes = await readdir(dir).catch(() => [] as string[]);
    const out: BlobMeta[] = [];
    for (const h of hashes) {
      const m = await readJson<BlobMeta>(join(dir, h, "meta.json"));
      if (m) out.push(m);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Put Blob: the body becomes the whole blob, one block. */
  async putBlob(container: string, name: string, body: Readable, props: BlobHttpProps, metadata: Record<string, string>): Promise<BlobMeta> {
    const dir = this.blobDir(container, name);
    const written = await this.toTemp(body);
    try {
      return await this.locked(`b:${container}/${name}`, async () => {
        await mkdir(join(dir, "data"), { recursive: true });
        const file = uniqueName();
        await rename(written.path, join(dir, "data", file));
        return this.commit(container, name, [{ id: "", size: written.size, file }], props, metadata, []);
      });
    } catch (err) {
      await rm(written.path, { force: true });
      this.release(written.size);
      throw err;
    }
  }

  /** Put Block: staged under its id (replacing an earlier staging of that id). */
  async stageBlock(container: string, name: string, id: string, body: Readable): Promise<StagedBlock> {
    const dir = join(this.blobDir(container, name), "staged");
    const written = await this.toTemp(body);
    await mkdir(dir, { recursive: true });
    const target = join(dir, Buffer.from(id, "utf8").toString("hex"));
    const old = await stat(target).catch(() => undefined);
    await rename(written.path, target);
    if (old) this.release(old.size);
    return { id, size: written.size };
  }

  async stagedBlocks(container: string, name: string): Promise<StagedBlock[]> {
    const dir = join(this.blobDir(container, name), "staged");
    const files = await readdir(dir).catch(() => [] as string[]);
    const out: StagedBlock[] = [];
    for (const f of files) {
      const s = await stat(join(dir, f)).catch(() => undefined);
      if (s) out.push({ id: Buffer.from(f, "hex").toString("utf8"), size: s.size });
    }
    return out;
  }

  /**
   * Put Block List: each entry names a staged block (Uncommitted), a block of the current version (Committed)
   * or either, staged first (Latest). Unused staged blocks are discarded, as the service does.
   */
  async commitBlockList(container: string, name: string, list: readonly { kind: "Committed" | "Uncommitted" | "Latest"; id: string }[], props: BlobHttpProps, metadata: Record<string, string>): Promise<BlobMeta> {
    return this.locked(`b:${container}/${name}`, async () => {
      const dir = this.blobDir(container, name);
      const current = await this.getBlob(container, name);
      const committed = new Map((current?.blocks ?? []).filter((b) => b.id !== "").map((b) => [b.id, b]));
      const staged = new Map((await this.stagedBlocks(container, name)).map((b) => [b.id, b]));
      const blocks: CommittedBlock[] = [];
      const moves: { from: string; file: string }[] = [];
      const usedStaged = new Map<string, string>();
      await mkdir(join(dir, "data"), { recursive: true });
      for (const entry of list) {
        const fromStaged = entry.kind !== "Committed" ? staged.get(entry.id) : undefined;
        if (fromStaged) {
          let file = usedStaged.get(entry.id);
          if (!file) {
            file = uniqueName();
            usedStaged.set(entry.id, file);
            moves.push({ from: join(dir, "staged", Buffer.from(entry.id, "utf8").toString("hex")), file });
          }
          blocks.push({ id: entry.id, size: fromStaged.size, file });
          continue;
        }
        const old = entry.kind !== "Uncommitted" ? committed.get(entry.id) : undefined;
        if (!old) throw new StrataError("STRATA_BLOB_INVALID_BLOCK_LIST", `block ${entry.id} (${entry.kind}) is neither staged nor committed on ${container}/${name}`);
        blocks.push({ id: old.id, size: old.size, file: old.file });
      }
      for (const m of moves) await rename(m.from, join(dir, "data", m.file));
      const leftover = [...staged.keys()].filter((id) => !usedStaged.has(id));
      return this.commit(container, name, blocks, props, metadata, leftover);
    });
  }

  /** Writes the new meta (the commit point), then drops files no version references. Caller holds the lock. */
  private async commit(container: string, name: string, blocks: CommittedBlock[], props: BlobHttpProps, metadata: Record<string, string>, leftoverStaged: string[]): Promise<BlobMeta> {
    const dir = this.blobDir(container, name);
    const previous = await this.getBlob(container, name);
    const now = Date.now();
    const meta: BlobMeta = {
      container, name, etag: newEtag(), created: previous?.created ?? now, modified: now,
      size: blocks.reduce((s, b) => s + b.size, 0), metadata, blocks, ...props,
    };
    await writeFileDurable(join(dir, "meta.json"), JSON.stringify(meta), this.tmp);
    const keep = new Set(blocks.map((b) => b.file));
    for (const b of previous?.blocks ?? []) {
      if (!keep.has(b.file)) {
        await rm(join(dir, "data", b.file), { force: true });
        this.release(b.size);
      }
    }
    for (const id of leftoverStaged) {
      const f = join(dir, "staged", Buffer.from(id, "utf8").toString("hex"));
      const s = await stat(f).catch(() => undefined);
      await rm(f, { force: true });
      if (s) this.release(s.size);
    }
    await rm(join(dir, "upload.json"), { force: true });
    this.emit("committed", meta);
    return meta;
  }

  /** Replaces metadata and/or HTTP properties (a new etag; not a new version of the bytes). */
  async updateBlob(container: string, name: string, change: { metadata?: Record<string, string>; props?: BlobHttpProps }): Promise<BlobMeta | undefined> {
    return this.locked(`b:${container}/${name}`, async () => {
      const m = await this.getBlob(container, name);
      if (!m) return undefined;
      const next: BlobMeta = { ...m, ...(change.props ?? {}), metadata: change.metadata ?? m.metadata, etag: newEtag(), modified: Date.now() };
      if (m.uploadedEtag === m.etag && !change.metadata) next.uploadedEtag = next.etag;
      await writeFileDurable(join(this.blobDir(container, name), "meta.json"), JSON.stringify(next), this.tmp);
      if (change.metadata) this.emit("committed", next);
      return next;
    });
  }

  /** Records that the cloud committed version `etag` (ignored when the blob changed since). */
  async markUploaded(container: string, name: string, etag: string): Promise<BlobMeta | undefined> {
    return this.locked(`b:${container}/${name}`, async () => {
      const m = await this.getBlob(container, name);
      if (!m || m.etag !== etag) return m;
      const next = { ...m, uploadedEtag: etag };
      await writeFileDurable(join(this.blobDir(container, name), "meta.json"), JSON.stringify(next), this.tmp);
      return next;
    });
  }

  /** Deletes a blob (optionally only if still at `etag`). */
  async deleteBlob(container: string, name: string, ifEtag?: string): Promise<boolean> {
    return this.locked(`b:${container}/${name}`, async () => {
      const m = await this.getBlob(container, name);
      const dir = this.blobDir(container, name);
      if (!m && !(await stat(dir).catch(() => undefined))) return false;
      if (ifEtag && m?.etag !== ifEtag) return false;
      const gone = join(this.tmp, `gone-${uniqueName()}`);
      await rename(dir, gone);
      await syncDir(join(this.containerDir(container), "blobs")).catch(() => undefined);
      const bytes = await duSum(gone);
      await rm(gone, { recursive: true, force: true });
      this.release(bytes);
      this.emit("deleted", container, name);
      return m !== undefined;
    });
  }

  /** Bytes [start, end] (inclusive) of a committed version, streamed block file by block file. */
  read(meta: BlobMeta, start = 0, end = meta.size - 1): Readable {
    const dir = join(this.blobDir(meta.container, meta.name), "data");
    async function* chunks(): AsyncGenerator<Buffer> {
      let offset = 0;
      for (const b of meta.blocks) {
        const bStart = offset;
        const bEnd = offset + b.size - 1;
        offset += b.size;
        if (b.size === 0 || bEnd < start || bStart > end) continue;
        const from = Math.max(start, bStart) - bStart;
        const to = Math.min(end, bEnd) - bStart;
        for await (const chunk of createReadStream(join(dir, b.file), { start: from, end: to, highWaterMark: 1024 * 1024 })) yield chunk as Buffer;
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  /** Durable per-blob scratch file (the uploader's state); undefined when absent or unreadable. */
  async readState<T>(container: string, name: string, file: string): Promise<T | undefined> {
    return readJson<T>(join(this.blobDir(container, name), file));
  }
  /** Atomic but not fsynced: per-block progress must not cost a disk flush per block (the cloud's list is the truth on resume). */
  async writeState(container: string, name: string, file: string, value: unknown): Promise<void> {
    const dir = this.blobDir(container, name);
    if (!(await stat(dir).catch(() => undefined))) return;
    await writeFileDurable(join(dir, file), JSON.stringify(value), this.tmp, false);
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw err;
  }
}

/** Bytes of block content below `dir` (data and staged files; small JSON files are not counted). */
async function duSum(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await duSum(p);
    else if (e.isFile() && !e.name.endsWith(".json")) total += (await stat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
