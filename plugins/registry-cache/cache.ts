import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { isStrataError, StrataError, type Logger } from "../../core/index.js";
import type { DiskStore, OpenBlob } from "./disk-store.js";
import { sendFileRange } from "./file-sender.js";
import { Fill, streamFill } from "./fill.js";
import { collectGarbage } from "./gc.js";
import { acceptedManifestTypes, isDigest, manifestMediaType, manifestReferences } from "./media-types.js";
import type { PullAuth } from "./pull-auth.js";
import { API_VERSION_HEADER, sendError, upstreamFailureStatus } from "./responses.js";
import { namespaceParam, parseRange, parseRegistryPath } from "./routes.js";
import { readAll, type UpstreamClient } from "./upstream/client.js";

/** An upstream as routed: repository names under `prefix` go to `client`. */
export interface RoutedUpstream {
  name: string;
  prefix: string;
  stripPrefix: boolean;
  client: UpstreamClient;
}

export interface RegistryCacheOptions {
  store: DiskStore;
  upstreams: readonly RoutedUpstream[];
  auth: PullAuth;
  maxManifestBytes: number;
  quotaBytes: number;
  logger: Logger;
  /** `WWW-Authenticate` realm on a 401. */
  realm: string;
}

/** Counters for tests, the bench and logs. */
export interface CacheStats {
  upstreamBlobFetches: number;
  upstreamBlobBytes: number;
  blobHits: number;
  staleTags: number;
  rejectedFills: number;
}

/** A manifest ready to serve. */
interface ManifestHit {
  digest: string;
  mediaType: string;
}

/** An upstream answer passed on to the client (404, 429, 5xx, unreachable). */
class UpstreamAnswer extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/**
 * The OCI distribution pull path in front of one or more upstreams (see README): manifests by tag and by
 * digest, blobs with Range, single-flight verified fills, stale-if-error tags, HEAD on a miss asked upstream.
 */
export class RegistryCache {
  readonly stats: CacheStats = { upstreamBlobFetches: 0, upstreamBlobBytes: 0, blobHits: 0, staleTags: 0, rejectedFills: 0 };
  private readonly fills = new Map<string, Promise<Fill>>();
  private readonly manifestFlights = new Map<string, Promise<ManifestHit>>();
  private readonly bodies = new Set<IncomingMessage>();
  private gcRunning: Promise<void> | undefined;
  private gcAgain = false;
  private stopped = false;

  constructor(private readonly o: RegistryCacheOptions) {}

  /** The raw handler for `/v2/…` on the HTTPS front. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    if (method !== "GET" && method !== "HEAD") {
      sendError(res, 405, "UNSUPPORTED", "this registry is a pull-through cache: only GET and HEAD are served", { allow: "GET, HEAD" });
      return;
    }
    const who = this.o.auth.check(req);
    if (!who.ok) {
      this.o.logger.debug({ reason: who.reason, url: req.url }, "registry pull refused");
      sendError(res, 401, "UNAUTHORIZED", "authentication required: a pull user, or a gateway or module id with a SAS token as password", {
        "www-authenticate": `Basic realm="${this.o.realm}"`,
      });
      return;
    }
    const path = parseRegistryPath(req.url ?? "/v2/");
    try {
      switch (path.kind) {
        case "base":
          res.writeHead(200, { ...API_VERSION_HEADER, "content-type": "application/json", "content-length": 2 });
          res.end(method === "HEAD" ? undefined : "{}");
          return;
        case "manifest":
          await this.manifest(req, res, path.name, path.reference);
          return;
        case "blob":
          await this.blob(req, res, path.name, path.digest);
          return;
        default:
          sendError(res, 404, "UNSUPPORTED", "not served by this pull-through cache (only /v2/<name>/manifests/<ref> and /v2/<name>/blobs/<digest>)");
      }
    } catch (err) {
      if (err instanceof UpstreamAnswer) {
        sendError(res, err.status, err.code, err.message);
        return;
      }
      this.o.logger.warn({ err, url: req.url }, "registry request failed");
      sendError(res, 502, "UNKNOWN", `upstream failure: ${(err as Error).message}`);
    }
  }

  /** Ends running fills (their clients see a dropped connection) and waits for a running GC. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const b of this.bodies) b.destroy(new Error("registry cache stopping"));
    await this.gcRunning;
  }

  // ---- routing -------------------------------------------------------------------------------------

  private route(name: string, url: string): { up: RoutedUpstream; repo: string } | undefined {
    const ns = namespaceParam(url);
    if (ns) {
      const byNs = this.o.upstreams.find((u) => u.prefix === `${ns}/` || u.client.host === ns);
      if (byNs) return { up: byNs, repo: name };
    }
    let best: RoutedUpstream | undefined;
    for (const u of this.o.upstreams) {
      if (u.prefix !== "" && name.startsWith(u.prefix) && (!best || u.prefix.length > best.prefix.length)) best = u;
    }
    if (best) return { up: best, repo: best.stripPrefix ? name.slice(best.prefix.length) : name };
    const fallback = this.o.upstreams.find((u) => u.prefix === "");
    return fallback ? { up: fallback, repo: name } : undefined;
  }

  // ---- manifests -----------------------------------------------------------------------------------

  private async manifest(req: IncomingMessage, res: ServerResponse, name: string, ref: string): Promise<void> {
    const routed = this.route(name, req.url ?? "");
    if (isDigest(ref)) {
      if (!(await this.o.store.manifestMeta(ref)) || !this.o.store.has(ref)) {
        if (!routed) throw new UpstreamAnswer(404, "MANIFEST_UNKNOWN", `manifest ${ref} is not cached and no upstream serves ${name}`);
        if (req.method === "HEAD") return this.relayHead(routed.up, `/v2/${routed.repo}/manifests/${ref}`, routed.repo, res, acceptedManifestTypes(undefined).join(", "), ref);
        await this.flight(`digest|${ref}`, () => this.fetchManifest(routed.up, routed.repo, ref, acceptedManifestTypes(undefined)));
      }
      const meta = await this.o.store.manifestMeta(ref);
      await this.sendManifest(req, res, { digest: ref, mediaType: meta?.mediaType ?? "application/octet-stream" });
      return;
    }
    if (!routed) throw new UpstreamAnswer(404, "NAME_UNKNOWN", `no upstream serves ${name}: add one with a matching prefix, or a default upstream`);
    const types = acceptedManifestTypes(req.headers.accept);
    const key = types.join(",");
    const hit = await this.flight(`tag|${routed.up.name}|${routed.repo}|${ref}|${key}`, () => this.resolveTag(routed.up, routed.repo, ref, types));
    await this.sendManifest(req, res, hit);
  }

  /** Revalidates a tag with a HEAD upstream; fetches on change; serves the cached entry if upstream fails. */
  private async resolveTag(up: RoutedUpstream, repo: string, tag: string, types: string[]): Promise<ManifestHit> {
    const acceptKey = types.join(",");
    const entry = await this.o.store.getTag(up.name, repo, tag, acceptKey);
    const cached = entry && this.o.store.has(entry.digest) ? entry : undefined;
    const stale = (why: string): ManifestHit => {
      this.stats.staleTags++;
      this.o.logger.warn({ upstream: up.name, repo, tag, digest: cached!.digest, why }, "registry serving cached tag, upstream failed");
      return { digest: cached!.digest, mediaType: cached!.mediaType };
    };
    let head: IncomingMessage;
    try {
      head = await up.client.request("HEAD", `/v2/${repo}/manifests/${encodeURIComponent(tag)}`, { scope: scopeOf(repo), headers: { accept: types.join(", ") } });
    } catch (err) {
      if (cached) return stale((err as Error).message);
      throw err;
    }
    head.resume();
    const status = head.statusCode ?? 0;
    if (status === 404) throw new UpstreamAnswer(404, "MANIFEST_UNKNOWN", `${repo}:${tag} is not known upstream (${up.name})`);
    if (status !== 200) {
      if (cached) return stale(`HEAD answered ${status}`);
      throw new UpstreamAnswer(upstreamFailureStatus(status), "UNKNOWN", `upstream ${up.name} answered ${status} for ${repo}:${tag}`);
    }
    const digest = head.headers["docker-content-digest"];
    if (typeof digest === "string" && isDigest(digest) && this.o.store.has(digest)) {
      const meta = await this.o.store.manifestMeta(digest);
      if (meta && types.includes(meta.mediaType)) {
        await this.o.store.putTag({ upstream: up.name, repo, tag, acceptKey, digest, mediaType: meta.mediaType, checkedAt: Date.now() });
        return { digest, mediaType: meta.mediaType };
      }
    }
    let fetched: ManifestHit;
    try {
      fetched = await this.fetchManifest(up, repo, tag, types);
    } catch (err) {
      if (cached && !(err instanceof UpstreamAnswer && err.status === 404)) return stale((err as Error).message);
      throw err;
    }
    await this.o.store.putTag({ upstream: up.name, repo, tag, acceptKey, digest: fetched.digest, mediaType: fetched.mediaType, checkedAt: Date.now() });
    return fetched;
  }

  /** GETs a manifest upstream, verifies it (against the digest asked for, and the one upstream claims), keeps it. */
  private async fetchManifest(up: RoutedUpstream, repo: string, ref: string, types: string[]): Promise<ManifestHit> {
    const res = await up.client.request("GET", `/v2/${repo}/manifests/${encodeURIComponent(ref)}`, { scope: scopeOf(repo), headers: { accept: types.join(", ") } });
    this.bodies.add(res);
    try {
      const status = res.statusCode ?? 0;
      if (status === 404) {
        res.resume();
        throw new UpstreamAnswer(404, "MANIFEST_UNKNOWN", `manifest ${repo}@${ref} is not known upstream (${up.name})`);
      }
      if (status !== 200) {
        res.resume();
        throw new UpstreamAnswer(upstreamFailureStatus(status), "UNKNOWN", `upstream ${up.name} answered ${status} for manifest ${repo}@${ref}`);
      }
      const body = await readAll(res, this.o.maxManifestBytes);
      const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
      const claimed = res.headers["docker-content-digest"];
      if ((isDigest(ref) && digest !== ref) || (typeof claimed === "string" && isDigest(claimed) && claimed !== digest)) {
        this.stats.rejectedFills++;
        throw new StrataError("STRATA_REGISTRY_MANIFEST_INVALID", `manifest ${repo}@${ref} from ${up.name} hashes to ${digest}, not ${isDigest(ref) ? ref : claimed}; nothing was kept`);
      }
      const mediaType = manifestMediaType(res.headers["content-type"], body);
      if (!this.o.store.has(digest)) await this.o.store.putVerified(digest, body);
      await this.o.store.putManifestMeta(digest, { mediaType, size: body.length, refs: manifestReferences(body) });
      this.scheduleGc();
      return { digest, mediaType };
    } finally {
      this.bodies.delete(res);
    }
  }

  private async sendManifest(req: IncomingMessage, res: ServerResponse, hit: ManifestHit): Promise<void> {
    const body = await this.o.store.readBlob(hit.digest);
    if (!body) throw new UpstreamAnswer(404, "MANIFEST_UNKNOWN", `manifest ${hit.digest} was evicted; retry`);
    void this.o.store.touch(hit.digest);
    res.writeHead(200, {
      ...API_VERSION_HEADER,
      "content-type": hit.mediaType,
      "content-length": body.length,
      "docker-content-digest": hit.digest,
      etag: `"${hit.digest}"`,
    });
    res.end(req.method === "HEAD" ? undefined : body);
  }

  // ---- blobs ---------------------------------------------------------------------------------------

  private async blob(req: IncomingMessage, res: ServerResponse, name: string, digest: string): Promise<void> {
    const open = await this.o.store.openBlob(digest);
    // A fill may have finished while openBlob waited: look again synchronously, so that joinFill below (in this
    // same tick) never starts a second upstream fetch of a blob that is already kept.
    if (open || this.o.store.has(digest)) {
      this.stats.blobHits++;
      return this.sendCachedBlob(req, res, digest, open);
    }
    const routed = this.route(name, req.url ?? "");
    if (!routed) throw new UpstreamAnswer(404, "BLOB_UNKNOWN", `blob ${digest} is not cached and no upstream serves ${name}`);
    if (req.method === "HEAD") {
      // distribution #4747: a HEAD on a miss asks upstream, so a nested cache below does not conclude "absent".
      const running = this.fills.has(digest) ? await this.fills.get(digest)!.catch(() => undefined) : undefined;
      if (running?.expectedSize !== undefined && running.state !== "failed") {
        res.writeHead(200, { ...API_VERSION_HEADER, "content-type": "application/octet-stream", "content-length": running.expectedSize, "docker-content-digest": digest });
        res.end();
        return;
      }
      return this.relayHead(routed.up, `/v2/${routed.repo}/blobs/${digest}`, routed.repo, res, undefined, digest);
    }
    const fill = await this.joinFill(routed.up, routed.repo, digest);
    if (fill.state === "done" || req.headers.range) {
      // A Range on a miss is served once the whole blob is verified (bytes of an unverified middle are never sent).
      while (fill.state === "running") await fill.changed();
      if (fill.state === "failed") throw new UpstreamAnswer(502, "BLOB_UNKNOWN", `fetching ${digest} upstream failed: ${fill.error?.message}`);
      return this.sendCachedBlob(req, res, digest);
    }
    res.writeHead(200, {
      ...API_VERSION_HEADER,
      "content-type": "application/octet-stream",
      "docker-content-digest": digest,
      ...(fill.expectedSize !== undefined ? { "content-length": fill.expectedSize } : {}),
    });
    await streamFill(fill, res);
  }

  /** The running fill of `digest`, or a new one: one upstream GET however many clients ask meanwhile. */
  private joinFill(up: RoutedUpstream, repo: string, digest: string): Promise<Fill> {
    const running = this.fills.get(digest);
    if (running) return running;
    const started = (async () => {
      if (this.stopped) throw new UpstreamAnswer(503, "UNAVAILABLE", "the registry cache is stopping");
      const body = await up.client.request("GET", `/v2/${repo}/blobs/${digest}`, { scope: scopeOf(repo) });
      const status = body.statusCode ?? 0;
      if (status !== 200) {
        body.resume();
        if (status === 404) throw new UpstreamAnswer(404, "BLOB_UNKNOWN", `blob ${digest} is not known upstream (${up.name}, ${repo})`);
        throw new UpstreamAnswer(upstreamFailureStatus(status), "UNKNOWN", `upstream ${up.name} answered ${status} for blob ${digest}`);
      }
      const length = Number(body.headers["content-length"]);
      const fill = new Fill(digest, Number.isSafeInteger(length) && length >= 0 && body.headers["content-length"] !== undefined ? length : undefined, this.o.store);
      this.stats.upstreamBlobFetches++;
      this.bodies.add(body);
      this.o.logger.debug({ upstream: up.name, repo, digest, size: fill.expectedSize }, "registry blob fill started");
      fill.run(body).then(
        () => {
          this.stats.upstreamBlobBytes += fill.written;
          this.o.logger.info({ upstream: up.name, repo, digest, size: fill.written }, "registry blob cached");
          this.scheduleGc();
        },
        (err: unknown) => {
          this.stats.rejectedFills++;
          this.o.logger.warn({ err, upstream: up.name, repo, digest }, "registry blob fill failed, nothing kept");
        },
      ).finally(() => {
        this.bodies.delete(body);
        this.fills.delete(digest);
      });
      return fill;
    })();
    this.fills.set(digest, started);
    started.catch(() => this.fills.delete(digest));
    return started;
  }

  /** Serves a kept blob from one open handle (one open and one fstat per hit; the LRU clock is touched at most once a minute). */
  private async sendCachedBlob(req: IncomingMessage, res: ServerResponse, digest: string, opened?: OpenBlob): Promise<void> {
    const blob = opened ?? (await this.o.store.openBlob(digest));
    if (!blob) throw new UpstreamAnswer(404, "BLOB_UNKNOWN", `blob ${digest} was evicted; retry`);
    const { fh, size } = blob;
    const base = { ...API_VERSION_HEADER, "content-type": "application/octet-stream", "docker-content-digest": digest, "accept-ranges": "bytes", etag: `"${digest}"` };
    const range = parseRange(req.headers.range, size);
    if (range === "unsatisfiable" || req.method === "HEAD" || size === 0) await fh.close();
    if (range === "unsatisfiable") {
      sendError(res, 416, "BLOB_UNKNOWN", `range ${req.headers.range} is outside the ${size} bytes of ${digest}`, { "content-range": `bytes */${size}` });
      return;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    if (range) res.writeHead(206, { ...base, "content-length": end - start + 1, "content-range": `bytes ${start}-${end}/${size}` });
    else res.writeHead(200, { ...base, "content-length": size });
    if (req.method === "HEAD" || size === 0) {
      res.end();
      return;
    }
    await sendFileRange(fh, start, end, res);
  }

  /** Answers a HEAD on a miss with upstream's own answer (status, size, digest). */
  private async relayHead(up: RoutedUpstream, path: string, repo: string, res: ServerResponse, accept: string | undefined, digest: string): Promise<void> {
    const r = await up.client.request("HEAD", path, { scope: scopeOf(repo), ...(accept ? { headers: { accept } } : {}) });
    r.resume();
    const status = r.statusCode ?? 0;
    const headers: Record<string, string | number> = { ...API_VERSION_HEADER };
    for (const h of ["content-type", "content-length", "docker-content-digest"]) {
      const v = r.headers[h];
      if (typeof v === "string") headers[h] = v;
    }
    if (status === 200) headers["docker-content-digest"] = digest;
    res.writeHead(status === 200 || status === 404 ? status : upstreamFailureStatus(status), headers);
    res.end();
  }

  private flight(key: string, work: () => Promise<ManifestHit>): Promise<ManifestHit> {
    let p = this.manifestFlights.get(key);
    if (!p) {
      p = work().finally(() => this.manifestFlights.delete(key));
      this.manifestFlights.set(key, p);
    }
    return p;
  }

  private scheduleGc(): void {
    if (this.gcRunning) {
      this.gcAgain = true;
      return;
    }
    this.gcRunning = (async () => {
      do {
        this.gcAgain = false;
        await collectGarbage(this.o.store, this.o.quotaBytes, this.o.logger).catch((err: unknown) =>
          this.o.logger.error({ err }, "registry cache gc failed"),
        );
      } while (this.gcAgain && !this.stopped);
    })().finally(() => {
      this.gcRunning = undefined;
    });
  }
}

function scopeOf(repo: string): string {
  return `repository:${repo}:pull`;
}

/** Whether an error is an upstream that could not be reached (vs. one that answered). */
export function isUnreachable(err: unknown): boolean {
  return isStrataError(err, "STRATA_REGISTRY_UPSTREAM_UNREACHABLE");
}
