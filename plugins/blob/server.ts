import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../../core/index.js";
import { blobNameProblem, containerNameProblem } from "./names.js";
import { flatHeaders, ReplayGuard, verifySharedKey } from "./shared-key.js";
import { QuotaError, type BlobHttpProps, type BlobMeta, type BlobStore, type ContainerMeta } from "./store.js";
import { blockListXml, errorXml, esc, metadataXml, parseBlockList, XML_HEAD } from "./xml.js";

/** The API version answered when a client sends none (Blob Storage on IoT Edge is consistent with 2017-04-17). */
const DEFAULT_VERSION = "2017-04-17";
/** Largest XML body read (a block list of 50,000 ids). */
const MAX_XML_BYTES = 8 * 1024 * 1024;

export interface BlobServerOptions {
  store: BlobStore;
  account: string;
  key: () => string;
  maxClockSkewSecs: number;
  logger: Logger;
}

/** Per-server counters (support bundle, tests). */
export interface BlobServerStats {
  requests: number;
  refused: Record<string, number>;
  bytesIn: number;
  bytesOut: number;
}

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  headers: Record<string, string | undefined>;
  container?: string;
  blob?: string;
  serviceEndpoint: string;
}

/**
 * The Blob REST subset of Blob Storage on IoT Edge, as a raw handler on core's HTTPS front: list containers;
 * container create/delete/properties/metadata/ACL/list blobs; blob put/get/head/delete/metadata/properties;
 * put block, put/get block list. Shared Key auth, a fresh x-ms-date, each signature once.
 */
export class BlobServer {
  private readonly replay: ReplayGuard;
  readonly stats: BlobServerStats = { requests: 0, refused: {}, bytesIn: 0, bytesOut: 0 };

  constructor(private readonly opts: BlobServerOptions) {
    this.replay = new ReplayGuard(opts.maxClockSkewSecs * 1000);
  }

  /** A raw handler for requests under `prefix` (the account follows it: `/prefix/account/container/blob`), or at `/account` when `prefix` is "". */
  handler(prefix: string): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
    return (req, res) => this.handle(prefix, req, res);
  }

  private async handle(prefix: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const rawPath = q === -1 ? url : url.slice(0, q);
    const rawQuery = q === -1 ? "" : url.slice(q + 1);
    const headers = flatHeaders(req.headers);
    res.setHeader("x-ms-request-id", randomUUID());
    res.setHeader("x-ms-version", headers["x-ms-version"] ?? DEFAULT_VERSION);
    res.setHeader("date", new Date().toUTCString());
    if (headers["x-ms-client-request-id"]) res.setHeader("x-ms-client-request-id", headers["x-ms-client-request-id"]);
    try {
      const rest = rawPath.slice(prefix.length);
      const segments = rest.split("/").slice(1);
      const account = segments[0] ?? "";
      if (account !== this.opts.account) throw new HttpError(404, "ResourceNotFound", `no account "${account}" here; the local account is ${this.opts.account}`);
      this.authenticate(req.method ?? "GET", rawPath, rawQuery, headers);
      const containerRaw = segments[1] ?? "";
      const blobRaw = segments.slice(2).join("/");
      const ctx: Ctx = {
        req, res, headers,
        query: new URLSearchParams(rawQuery),
        serviceEndpoint: `https://${headers["host"] ?? "localhost"}${prefix}/${account}/`,
      };
      if (containerRaw !== "") ctx.container = decode(containerRaw, "container");
      if (blobRaw !== "") ctx.blob = decode(blobRaw, "blob");
      if (ctx.container !== undefined) {
        const p = containerNameProblem(ctx.container);
        if (p) throw new HttpError(400, "InvalidResourceName", p);
      }
      if (ctx.blob !== undefined) {
        const p = blobNameProblem(ctx.blob);
        if (p) throw new HttpError(400, "InvalidResourceName", p);
      }
      await this.dispatch(ctx);
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  private authenticate(method: string, path: string, query: string, headers: Record<string, string | undefined>): void {
    const verdict = verifySharedKey(this.opts.account, this.opts.key(), { method, path, query, headers });
    if (!verdict.ok) {
      if (!headers["authorization"]) throw new HttpError(401, "NoAuthenticationInformation", `${verdict.reason}; sign requests with the account key (Shared Key)`);
      throw new HttpError(403, "AuthenticationFailed", verdict.reason);
    }
    const when = Date.parse(headers["x-ms-date"] ?? headers["date"] ?? "");
    if (!Number.isFinite(when)) throw new HttpError(403, "AuthenticationFailed", "x-ms-date (or Date) is missing or not a date");
    const skew = Math.abs(Date.now() - when);
    if (skew > this.opts.maxClockSkewSecs * 1000) {
      throw new HttpError(403, "AuthenticationFailed", `x-ms-date is ${Math.round(skew / 1000)} s from this gateway's clock (at most ${this.opts.maxClockSkewSecs} s): a stale or replayed request, or a wrong clock`);
    }
    if (!this.replay.firstUse(verdict.signature)) throw new HttpError(403, "AuthenticationFailed", "this signature was already used (replayed request)");
  }

  private async dispatch(c: Ctx): Promise<void> {
    const method = c.req.method ?? "GET";
    const restype = c.query.get("restype");
    const comp = c.query.get("comp");
    if (c.container === undefined) {
      if (method === "GET" && comp === "list") return this.listContainers(c);
      if (restype === "service" && comp === "properties" && method === "GET") return this.send(c, 200, `${XML_HEAD}<StorageServiceProperties/>`);
      if (restype === "account" && comp === "properties") return this.send(c, 200, "", { "x-ms-sku-name": "Standard_LRS", "x-ms-account-kind": "StorageV2" });
      throw new HttpError(400, "UnsupportedQueryParameter", `${method} on the account with comp=${comp ?? ""} is not supported here`);
    }
    if (c.blob === undefined) {
      if (restype !== "container") throw new HttpError(400, "InvalidQueryParameterValue", "container requests need restype=container");
      return this.containerOp(c, method, comp);
    }
    return this.blobOp(c, method, comp);
  }

  // ---- account ----

  private async listContainers(c: Ctx): Promise<void> {
    const prefix = c.query.get("prefix") ?? "";
    const marker = c.query.get("marker") ?? "";
    const max = limit(c.query.get("maxresults"));
    const withMeta = (c.query.get("include") ?? "").split(",").includes("metadata");
    const all = (await this.opts.store.listContainers()).filter((x) => x.name.startsWith(prefix) && x.name >= marker);
    const page = all.slice(0, max);
    const next = all[max]?.name ?? "";
    const items = page.map((x) => `<Container><Name>${esc(x.name)}</Name><Properties>${containerProps(x)}</Properties>${withMeta ? metadataXml(x.metadata) : ""}</Container>`).join("");
    this.send(c, 200, `${XML_HEAD}<EnumerationResults ServiceEndpoint="${esc(c.serviceEndpoint)}"><Prefix>${esc(prefix)}</Prefix>${marker ? `<Marker>${esc(marker)}</Marker>` : ""}<MaxResults>${max}</MaxResults><Containers>${items}</Containers><NextMarker>${esc(next)}</NextMarker></EnumerationResults>`);
  }

  // ---- containers ----

  private async containerOp(c: Ctx, method: string, comp: string | null): Promise<void> {
    const store = this.opts.store;
    const name = c.container!;
    if (method === "PUT" && comp === null) {
      await drain(c.req);
      const made = await store.createContainer(name, metadataOf(c.headers));
      if (!made) throw new HttpError(409, "ContainerAlreadyExists", `container ${name} already exists`);
      return this.send(c, 201, "", containerHeaders(made));
    }
    const existing = await store.getContainer(name);
    if (!existing) {
      await drain(c.req);
      throw new HttpError(404, "ContainerNotFound", `container ${name} does not exist`);
    }
    if (method === "DELETE" && comp === null) {
      await store.deleteContainer(name);
      return this.send(c, 202, "");
    }
    if ((method === "GET" || method === "HEAD") && comp === null) {
      return this.send(c, 200, "", { ...containerHeaders(existing), ...metaHeaders(existing.metadata), "x-ms-lease-state": "available", "x-ms-lease-status": "unlocked", "x-ms-has-immutability-policy": "false", "x-ms-has-legal-hold": "false" });
    }
    if (method === "PUT" && comp === "metadata") {
      const next = await store.setContainerMetadata(name, metadataOf(c.headers));
      return this.send(c, 200, "", containerHeaders(next ?? existing));
    }
    if (comp === "acl") {
      await drain(c.req);
      if (method === "PUT") return this.send(c, 200, "", containerHeaders(existing));
      return this.send(c, 200, `${XML_HEAD}<SignedIdentifiers/>`, containerHeaders(existing));
    }
    if (method === "GET" && comp === "list") return this.listBlobs(c, name);
    throw new HttpError(400, "UnsupportedQueryParameter", `${method} on a container with comp=${comp ?? ""} is not supported here (no leases, no ACL policies)`);
  }

  private async listBlobs(c: Ctx, container: string): Promise<void> {
    const prefix = c.query.get("prefix") ?? "";
    const marker = c.query.get("marker") ?? "";
    const delimiter = c.query.get("delimiter") ?? "";
    const max = limit(c.query.get("maxresults"));
    const withMeta = (c.query.get("include") ?? "").split(",").includes("metadata");
    const all = (await this.opts.store.listBlobs(container)).filter((b) => b.name.startsWith(prefix) && b.name >= marker);
    const entries: string[] = [];
    const prefixes = new Set<string>();
    let next = "";
    for (const b of all) {
      if (entries.length >= max) {
        next = b.name;
        break;
      }
      if (delimiter) {
        const at = b.name.indexOf(delimiter, prefix.length);
        if (at !== -1) {
          const p = b.name.slice(0, at + delimiter.length);
          if (!prefixes.has(p)) {
            prefixes.add(p);
            entries.push(`<BlobPrefix><Name>${esc(p)}</Name></BlobPrefix>`);
          }
          continue;
        }
      }
      entries.push(`<Blob><Name>${esc(b.name)}</Name><Properties>${blobProps(b)}</Properties>${withMeta ? metadataXml(b.metadata) : ""}</Blob>`);
    }
    this.send(c, 200, `${XML_HEAD}<EnumerationResults ServiceEndpoint="${esc(c.serviceEndpoint)}" ContainerName="${esc(container)}"><Prefix>${esc(prefix)}</Prefix>${marker ? `<Marker>${esc(marker)}</Marker>` : ""}<MaxResults>${max}</MaxResults>${delimiter ? `<Delimiter>${esc(delimiter)}</Delimiter>` : ""}<Blobs>${entries.join("")}</Blobs><NextMarker>${esc(next)}</NextMarker></EnumerationResults>`);
  }

  // ---- blobs ----

  private async blobOp(c: Ctx, method: string, comp: string | null): Promise<void> {
    const store = this.opts.store;
    const container = c.container!;
    const name = c.blob!;
    if (!(await store.getContainer(container))) {
      await drain(c.req);
      throw new HttpError(404, "ContainerNotFound", `container ${container} does not exist; create it first`);
    }
    if (method === "PUT" && comp === null) {
      const type = c.headers["x-ms-blob-type"];
      if (type !== "BlockBlob") {
        await drain(c.req);
        throw new HttpError(400, "InvalidHeaderValue", `x-ms-blob-type ${type ?? "(missing)"}: only BlockBlob is supported (no page or append blobs)`);
      }
      await this.checkConditions(c, await store.getBlob(container, name));
      this.precheckQuota(c);
      const meta = await store.putBlob(container, name, this.countIn(c.req), httpPropsOf(c.headers), metadataOf(c.headers));
      return this.send(c, 201, "", { ...blobHeaders(meta), "x-ms-request-server-encrypted": "false" });
    }
    if (method === "PUT" && comp === "block") {
      const id = c.query.get("blockid") ?? "";
      const raw = Buffer.from(id, "base64");
      if (id === "" || raw.length === 0 || raw.length > 64 || raw.toString("base64") !== id) {
        await drain(c.req);
        throw new HttpError(400, "InvalidQueryParameterValue", "blockid must be base64 of at most 64 bytes");
      }
      this.precheckQuota(c);
      await store.stageBlock(container, name, id, this.countIn(c.req));
      return this.send(c, 201, "", { "x-ms-request-server-encrypted": "false" });
    }
    if (method === "PUT" && comp === "blocklist") {
      const xml = await readBody(c.req, MAX_XML_BYTES);
      let list;
      try {
        list = parseBlockList(xml);
      } catch (err) {
        throw new HttpError(400, "InvalidXmlDocument", (err as Error).message);
      }
      await this.checkConditions(c, await store.getBlob(container, name));
      try {
        const meta = await store.commitBlockList(container, name, list, httpPropsOf(c.headers), metadataOf(c.headers));
        return this.send(c, 201, "", { ...blobHeaders(meta), "x-ms-request-server-encrypted": "false" });
      } catch (err) {
        if ((err as { code?: string }).code === "STRATA_BLOB_INVALID_BLOCK_LIST") throw new HttpError(400, "InvalidBlockList", (err as Error).message);
        throw err;
      }
    }
    if (method === "GET" && comp === "blocklist") {
      const kind = (c.query.get("blocklisttype") ?? "committed").toLowerCase();
      const meta = await store.getBlob(container, name);
      const staged = kind === "committed" ? undefined : await store.stagedBlocks(container, name);
      if (!meta && (!staged || staged.length === 0)) throw new HttpError(404, "BlobNotFound", `blob ${container}/${name} does not exist`);
      const committed = kind === "uncommitted" ? [] : (meta?.blocks ?? []).filter((b) => b.id !== "");
      return this.send(c, 200, blockListXml(committed, staged), meta ? blobHeaders(meta) : {});
    }
    await drain(c.req);
    const meta = await store.getBlob(container, name);
    if (!meta) throw new HttpError(404, "BlobNotFound", `blob ${container}/${name} does not exist`);
    if (method === "GET" && comp === null) return this.download(c, meta);
    if (method === "HEAD" && comp === null) {
      await this.checkConditions(c, meta);
      return this.send(c, 200, "", { ...blobHeaders(meta), ...propsHeaders(meta), ...metaHeaders(meta.metadata), "content-length": String(meta.size) });
    }
    if (method === "DELETE" && comp === null) {
      await this.checkConditions(c, meta);
      await store.deleteBlob(container, name);
      return this.send(c, 202, "", { "x-ms-delete-type-permanent": "true" });
    }
    if (method === "PUT" && comp === "metadata") {
      const next = await store.updateBlob(container, name, { metadata: metadataOf(c.headers) });
      return this.send(c, 200, "", blobHeaders(next ?? meta));
    }
    if (method === "PUT" && comp === "properties") {
      const next = await store.updateBlob(container, name, { props: httpPropsOf(c.headers) });
      return this.send(c, 200, "", blobHeaders(next ?? meta));
    }
    throw new HttpError(400, "UnsupportedQueryParameter", `${method} on a blob with comp=${comp ?? ""} is not supported here (no leases, snapshots, copy or tiers)`);
  }

  private async download(c: Ctx, meta: BlobMeta): Promise<void> {
    await this.checkConditions(c, meta);
    const range = parseRange(c.headers["x-ms-range"] ?? c.headers["range"], meta.size);
    const base = { ...blobHeaders(meta), ...propsHeaders(meta), ...metaHeaders(meta.metadata), "accept-ranges": "bytes" };
    if (range === "unsatisfiable") throw new HttpError(416, "InvalidRange", `the range is outside the blob's ${meta.size} bytes`, { "content-range": `bytes */${meta.size}` });
    const [start, end] = range ?? [0, meta.size - 1];
    const length = meta.size === 0 ? 0 : end - start + 1;
    c.res.writeHead(range ? 206 : 200, { ...base, "content-length": String(length), ...(range ? { "content-range": `bytes ${start}-${end}/${meta.size}` } : {}) });
    if (length === 0 || c.req.method === "HEAD") {
      c.res.end();
      return;
    }
    const body = this.opts.store.read(meta, start, end);
    body.on("data", (chunk: Buffer) => {
      this.stats.bytesOut += chunk.length;
    });
    await new Promise<void>((resolve) => {
      body.on("error", (err) => {
        this.opts.logger.warn({ err, container: meta.container, blob: meta.name }, "blob read failed mid-response");
        c.res.destroy();
        resolve();
      });
      c.res.on("close", () => {
        body.destroy();
        resolve();
      });
      body.pipe(c.res);
    });
  }

  private async checkConditions(c: Ctx, meta: BlobMeta | undefined): Promise<void> {
    const ifMatch = c.headers["if-match"];
    const ifNoneMatch = c.headers["if-none-match"];
    const failed = (ifMatch !== undefined && ifMatch !== "*" && ifMatch !== meta?.etag) || (ifMatch === "*" && !meta)
      || (ifNoneMatch !== undefined && meta !== undefined && (ifNoneMatch === "*" || ifNoneMatch === meta.etag));
    if (failed) {
      await drain(c.req);
      const read = c.req.method === "GET" || c.req.method === "HEAD";
      if (read && ifNoneMatch !== undefined && ifMatch === undefined) throw new HttpError(304, "ConditionNotMet", "not modified");
      throw new HttpError(read ? 412 : meta && ifNoneMatch === "*" ? 409 : 412, ifNoneMatch === "*" && meta && !read ? "BlobAlreadyExists" : "ConditionNotMet", "the condition specified using HTTP conditional header(s) is not met");
    }
  }

  /** A body whose declared length cannot fit is refused before a byte is read. */
  private precheckQuota(c: Ctx): void {
    const len = Number(c.headers["content-length"] ?? "0");
    const store = this.opts.store;
    if (Number.isFinite(len) && store.usedBytes() + len > store.quotaBytes()) throw new QuotaError(store.usedBytes(), store.quotaBytes(), store.willFree());
  }

  private countIn(req: IncomingMessage): IncomingMessage {
    req.on("data", (chunk: Buffer) => {
      this.stats.bytesIn += chunk.length;
    });
    return req;
  }

  private send(c: Ctx, status: number, body: string, headers: Record<string, string> = {}): void {
    const buf = Buffer.from(body, "utf8");
    c.res.writeHead(status, {
      ...headers,
      ...(buf.length > 0 ? { "content-type": "application/xml" } : {}),
      ...(c.req.method === "HEAD" && headers["content-length"] ? {} : { "content-length": String(buf.length) }),
    });
    c.res.end(c.req.method === "HEAD" ? undefined : buf);
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    let e: HttpError;
    if (err instanceof HttpError) e = err;
    else if (err instanceof QuotaError) {
      e = err.willFree
        ? new HttpError(503, "ServerBusy", err.message, { "retry-after": "30" })
        : new HttpError(507, "InsufficientStorage", err.message);
    } else {
      this.opts.logger.error({ err, method: req.method, url: req.url }, "blob request failed");
      e = new HttpError(500, "InternalError", "the gateway could not complete the request; see its log");
    }
    this.stats.refused[e.code] = (this.stats.refused[e.code] ?? 0) + 1;
    if (e.status >= 400 && e.status < 500) this.opts.logger.debug({ status: e.status, code: e.code, method: req.method, url: req.url, reason: e.message }, "blob request refused");
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = req.method === "HEAD" || e.status === 304 ? "" : errorXml(e.code, e.message);
    res.writeHead(e.status, { ...e.headers, "x-ms-error-code": e.code, "content-type": "application/xml", "content-length": String(Buffer.byteLength(body)) });
    res.end(body);
    // A refused upload may still be sending its body: let it drain into nothing rather than reset the socket.
    if (!req.readableEnded) req.resume();
  }
}

function decode(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, "InvalidUri", `the ${what} name is not valid percent-encoding`);
  }
}

function limit(v: string | null): number {
  const n = v === null ? 5000 : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new HttpError(400, "InvalidQueryParameterValue", "maxresults must be a positive integer");
  return Math.min(n, 5000);
}

function metadataOf(h: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (!k.startsWith("x-ms-meta-") || v === undefined) continue;
    const name = k.slice("x-ms-meta-".length);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new HttpError(400, "InvalidMetadata", `metadata name "${name}" must be a C# identifier`);
    out[name] = v;
  }
  return out;
}

function httpPropsOf(h: Record<string, string | undefined>): BlobHttpProps {
  const pick = (k: string): string | undefined => h[`x-ms-blob-${k}`];
  const out: BlobHttpProps = {};
  const set = (key: keyof BlobHttpProps, v: string | undefined): void => {
    if (v !== undefined) out[key] = v;
  };
  set("contentType", pick("content-type"));
  set("contentEncoding", pick("content-encoding"));
  set("contentLanguage", pick("content-language"));
  set("contentMD5", pick("content-md5"));
  set("cacheControl", pick("cache-control"));
  set("contentDisposition", pick("content-disposition"));
  return out;
}

const httpDate = (ms: number): string => new Date(ms).toUTCString();

function containerHeaders(c: ContainerMeta): Record<string, string> {
  return { etag: c.etag, "last-modified": httpDate(c.modified) };
}

function blobHeaders(b: BlobMeta): Record<string, string> {
  return { etag: b.etag, "last-modified": httpDate(b.modified) };
}

function propsHeaders(b: BlobMeta): Record<string, string> {
  const out: Record<string, string> = {
    "x-ms-blob-type": "BlockBlob", "x-ms-creation-time": httpDate(b.created), "x-ms-lease-state": "available",
    "x-ms-lease-status": "unlocked", "x-ms-server-encrypted": "false", "content-type": b.contentType ?? "application/octet-stream",
  };
  if (b.contentEncoding) out["content-encoding"] = b.contentEncoding;
  if (b.contentLanguage) out["content-language"] = b.contentLanguage;
  if (b.contentMD5) out["content-md5"] = b.contentMD5;
  if (b.cacheControl) out["cache-control"] = b.cacheControl;
  if (b.contentDisposition) out["content-disposition"] = b.contentDisposition;
  return out;
}

function metaHeaders(meta: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(meta).map(([k, v]) => [`x-ms-meta-${k}`, v]));
}

function containerProps(c: ContainerMeta): string {
  return `<Last-Modified>${httpDate(c.modified)}</Last-Modified><Etag>${esc(c.etag)}</Etag><LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState><HasImmutabilityPolicy>false</HasImmutabilityPolicy><HasLegalHold>false</HasLegalHold>`;
}

function blobProps(b: BlobMeta): string {
  const opt = (tag: string, v: string | undefined): string => `<${tag}>${v ? esc(v) : ""}</${tag}>`;
  return `<Creation-Time>${httpDate(b.created)}</Creation-Time><Last-Modified>${httpDate(b.modified)}</Last-Modified><Etag>${esc(b.etag)}</Etag>`
    + `<Content-Length>${b.size}</Content-Length>${opt("Content-Type", b.contentType ?? "application/octet-stream")}${opt("Content-Encoding", b.contentEncoding)}`
    + `${opt("Content-Language", b.contentLanguage)}${opt("Content-MD5", b.contentMD5)}${opt("Cache-Control", b.cacheControl)}${opt("Content-Disposition", b.contentDisposition)}`
    + `<BlobType>BlockBlob</BlobType><LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState><ServerEncrypted>false</ServerEncrypted>`;
}

/** `bytes=a-b` / `bytes=a-` / `bytes=-n` → [start, end]; undefined = whole blob. */
export function parseRange(v: string | undefined, size: number): [number, number] | undefined | "unsatisfiable" {
  if (!v) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(v.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return "unsatisfiable";
  return [start, end];
}

async function readBody(req: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of req) {
    n += (chunk as Buffer).length;
    if (n > max) throw new HttpError(413, "RequestBodyTooLarge", `body over ${max} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded) return;
  for await (const _ of req) {
    // discard
  }
}
