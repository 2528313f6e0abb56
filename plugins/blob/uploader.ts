import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Logger } from "../../core/index.js";
import type { CloudClient } from "./cloud.js";
import type { UploadConfig } from "./config.js";
import { expandTarget } from "./names.js";
import type { BlobMeta, BlobStore } from "./store.js";

/** Durable per-blob upload state (`upload.json` beside the blob's meta). */
interface UploadState {
  etag: string;
  target: string;
  /** Indexes of the parts the cloud acknowledged. */
  done: number[];
}

export interface UploaderStats {
  pending: number;
  blobsUploaded: number;
  blocksSent: number;
  /** Blocks not sent again on a resume because the cloud already had them. */
  blocksSkipped: number;
  failures: number;
  lastError?: string;
  /** The blob being uploaded now. */
  current?: string;
}

const key = (container: string, name: string): string => `${container}\u0000${name}`;

/**
 * deviceToCloudUpload: every committed blob of a mapped container goes to cloud storage block by block, in
 * OldestFirst or NewestFirst order, one blob at a time. The cloud's uncommitted block list is the truth on
 * resume, so after a crash or an outage only the blocks the cloud lacks are sent again. Failures back off
 * (doubling) and keep the blob at the head of the queue: nothing is dropped.
 * Events: "uploaded" (meta, target) after each blob, "failed" (err, {container, name}) after each failed attempt.
 */
export class Uploader extends EventEmitter {
  private readonly pending = new Map<string, { container: string; name: string; modified: number }>();
  private readonly ensured = new Set<string>();
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private stopped = false;
  private readonly unsubscribe: (() => void)[] = [];
  readonly stats: UploaderStats = { pending: 0, blobsUploaded: 0, blocksSent: 0, blocksSkipped: 0, failures: 0 };

  constructor(
    private readonly store: BlobStore,
    private readonly client: CloudClient,
    private readonly cfg: UploadConfig,
    private readonly vars: { hub: string; device: string },
    private readonly log: Logger,
  ) {
    super();
  }

  /** Target container of a local one, or undefined when it is not mapped for upload. */
  targetOf(container: string): string | undefined {
    const m = this.cfg.containers[container];
    return m ? expandTarget(m.target, { ...this.vars, container }) : undefined;
  }

  /** Queues whatever the cloud does not have yet, then follows commits. */
  async start(): Promise<void> {
    const onCommit = (meta: BlobMeta): void => this.enqueue(meta);
    const onDelete = (container: string, name: string): void => {
      this.pending.delete(key(container, name));
    };
    const onContainerDelete = (container: string): void => {
      for (const [k, p] of this.pending) if (p.container === container) this.pending.delete(k);
    };
    this.store.on("committed", onCommit);
    this.store.on("deleted", onDelete);
    this.store.on("containerDeleted", onContainerDelete);
    this.unsubscribe.push(() => this.store.off("committed", onCommit), () => this.store.off("deleted", onDelete), () => this.store.off("containerDeleted", onContainerDelete));
    this.store.willFree = () => this.cfg.delete_after_upload && this.pending.size > 0;
    for (const container of Object.keys(this.cfg.containers)) {
      for (const meta of await this.store.listBlobs(container)) this.enqueue(meta);
    }
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const u of this.unsubscribe) u();
    this.unsubscribe.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.client.close();
    await this.running?.catch(() => undefined);
  }

  /** Whether a blob still waits for (or is in) upload: auto-delete's retainWhileUploading. */
  isPending(container: string, name: string): boolean {
    return this.pending.has(key(container, name));
  }

  private enqueue(meta: BlobMeta): void {
    if (!this.targetOf(meta.container) || meta.uploadedEtag === meta.etag) return;
    this.pending.set(key(meta.container, meta.name), { container: meta.container, name: meta.name, modified: meta.modified });
    this.stats.pending = this.pending.size;
    this.kick();
  }

  private kick(): void {
    if (this.stopped || this.running || this.timer) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (!this.stopped && this.pending.size > 0 && !this.timer) this.kick();
    });
  }

  private next(): { container: string; name: string } | undefined {
    let pick: { container: string; name: string; modified: number } | undefined;
    for (const p of this.pending.values()) {
      if (!pick) pick = p;
      else if (this.cfg.order === "OldestFirst" ? p.modified < pick.modified : p.modified > pick.modified) pick = p;
    }
    return pick;
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      const item = this.next();
      if (!item) break;
      try {
        await this.uploadOne(item.container, item.name);
        this.backoffMs = 0;
      } catch (err) {
        if (this.stopped) return;
        this.stats.failures++;
        this.stats.lastError = (err as Error).message;
        this.backoffMs = Math.min(this.cfg.retry_max_ms, this.backoffMs === 0 ? this.cfg.retry_min_ms : this.backoffMs * 2);
        const delay = Math.round(this.backoffMs * (0.75 + Math.random() * 0.5));
        this.log.warn({ err, container: item.container, blob: item.name, retryInMs: delay }, "blob upload failed, will retry");
        this.emit("failed", err, item);
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.kick();
        }, delay);
        return;
      }
    }
  }

  private async uploadOne(container: string, name: string): Promise<void> {
    const k = key(container, name);
    const meta = await this.store.getBlob(container, name);
    const target = this.targetOf(container);
    if (!meta || !target || meta.uploadedEtag === meta.etag) {
      this.pending.delete(k);
      this.stats.pending = this.pending.size;
      return;
    }
    this.stats.current = `${container}/${name}`;
    if (!this.ensured.has(target)) {
      await this.client.ensureContainer(target);
      this.ensured.add(target);
    }
    const size = this.cfg.block_bytes;
    const parts = Math.ceil(meta.size / size);
    const tag = createHash("sha256").update(meta.etag).digest("hex").slice(0, 12);
    // Equal-length ids (the service requires it within a blob), tied to this version so stale blocks never mix in.
    const ids = Array.from({ length: parts }, (_, i) => Buffer.from(`${tag}-${String(i).padStart(6, "0")}`).toString("base64"));
    const cloud = await this.client.blockLists(target, name);
    if (cloud.committed.length === parts && parts > 0 && cloud.committed.every((b, i) => b.id === ids[i])) {
      // A crash after Put Block List and before we recorded it: the cloud has this version already.
      await this.finish(meta, target);
      return;
    }
    const partLength = (i: number): number => Math.min(size, meta.size - i * size);
    const have = new Set(cloud.uncommitted.filter((b) => ids.includes(b.id)).map((b) => b.id));
    const state = await this.store.readState<UploadState>(container, name, "upload.json");
    const done = new Set<number>();
    for (let i = 0; i < parts; i++) if (have.has(ids[i]!) && cloud.uncommitted.find((b) => b.id === ids[i])?.size === partLength(i)) done.add(i);
    if (state && state.etag === meta.etag) {
      const lost = state.done.filter((i) => !done.has(i)).length;
      if (lost > 0) this.log.info({ container, blob: name, lost }, "cloud lost staged blocks, sending them again");
    }
    this.stats.blocksSkipped += done.size;
    const todo = Array.from({ length: parts }, (_, i) => i).filter((i) => !done.has(i));
    const save = async (): Promise<void> => this.store.writeState(container, name, "upload.json", { etag: meta.etag, target, done: [...done].sort((a, b) => a - b) } satisfies UploadState);
    let cursor = 0;
    let changed = false;
    const worker = async (): Promise<void> => {
      while (cursor < todo.length && !this.stopped && !changed) {
        const i = todo[cursor++]!;
        const now = await this.store.getBlob(container, name);
        if (now?.etag !== meta.etag) {
          changed = true;
          return;
        }
        const start = i * size;
        const len = partLength(i);
        await this.client.putBlock(target, name, ids[i]!, this.store.read(meta, start, start + len - 1), len);
        this.stats.blocksSent++;
        done.add(i);
        await save();
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.cfg.parallel_blocks, Math.max(1, todo.length)) }, worker));
    if (this.stopped) throw new Error("uploader stopped");
    if (changed) return; // the new version is queued by its own commit
    await this.client.putBlockList(target, name, ids, { ...(meta.contentType ? { contentType: meta.contentType } : {}), metadata: meta.metadata });
    await this.finish(meta, target);
  }

  private async finish(meta: BlobMeta, target: string): Promise<void> {
    const k = key(meta.container, meta.name);
    const after = await this.store.markUploaded(meta.container, meta.name, meta.etag);
    if (after?.etag === meta.etag) this.pending.delete(k);
    this.stats.pending = this.pending.size;
    this.stats.blobsUploaded++;
    this.stats.current = undefined;
    this.log.info({ container: meta.container, blob: meta.name, target, bytes: meta.size }, "blob uploaded");
    if (this.cfg.delete_after_upload && after?.etag === meta.etag) await this.store.deleteBlob(meta.container, meta.name, meta.etag);
    this.emit("uploaded", meta, target);
  }
}
