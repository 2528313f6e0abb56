import http from "node:http";
import https from "node:https";
import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import { StrataError } from "../../core/index.js";
import { signRequest } from "./shared-key.js";
import { esc, parseBlocks } from "./xml.js";

const API_VERSION = "2021-08-06";

/** A parsed cloud storage connection string. */
export interface CloudAccount {
  account: string;
  key: string;
  /** Blob service endpoint, e.g. `https://acct.blob.core.windows.net` or `http://127.0.0.1:10000/devstoreaccount1` (path-style). */
  endpoint: URL;
}

/** `DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…;BlobEndpoint=…|EndpointSuffix=…`. Never echoes the key. */
export function parseConnectionString(text: string): CloudAccount {
  const parts = new Map<string, string>();
  for (const p of text.trim().split(";")) {
    const eq = p.indexOf("=");
    if (eq > 0) parts.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim());
  }
  const account = parts.get("accountname");
  const key = parts.get("accountkey");
  if (!account || !key) {
    throw new StrataError("STRATA_BLOB_CONNECTION_STRING", "plugins.blob.upload.connection_string_file: the connection string needs AccountName and AccountKey");
  }
  const explicit = parts.get("blobendpoint");
  const endpoint = explicit
    ? explicit
    : `${parts.get("defaultendpointsprotocol") ?? "https"}://${account}.blob.${parts.get("endpointsuffix") ?? "core.windows.net"}`;
  let url: URL;
  try {
    url = new URL(endpoint.replace(/\/+$/, ""));
  } catch (err) {
    throw new StrataError("STRATA_BLOB_CONNECTION_STRING", `plugins.blob.upload.connection_string_file: BlobEndpoint "${endpoint}" is not a URL`, { cause: err });
  }
  return { account, key, endpoint: url };
}

/** A cloud answer that was not what we asked for. */
export class CloudError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export interface CloudClientOptions {
  timeoutMs: number;
  ca?: string;
  /** TLS name to check when the endpoint's host is an address. */
  servername?: string;
}

/** The five Blob REST calls the uploader needs, Shared Key signed, bodies streamed. */
export class CloudClient {
  private readonly agent: http.Agent;
  private readonly lib: typeof http | typeof https;
  /** Requests (by kind) and bytes sent: the resume tests count re-sent blocks with these. */
  readonly counters = { putBlock: 0, putBlockList: 0, bytesSent: 0 };

  constructor(readonly account: CloudAccount, private readonly opts: CloudClientOptions) {
    const secure = account.endpoint.protocol === "https:";
    this.lib = secure ? https : http;
    this.agent = secure
      ? new https.Agent({ keepAlive: true, ...(opts.ca ? { ca: opts.ca } : {}), ...(opts.servername ? { servername: opts.servername } : {}) })
      : new http.Agent({ keepAlive: true });
  }

  close(): void {
    this.agent.destroy();
  }

  /** Creates the container; an existing one is fine. */
  async ensureContainer(container: string): Promise<void> {
    const r = await this.request("PUT", [container], "restype=container", {});
    if (r.status !== 201 && !(r.status === 409 && r.code === "ContainerAlreadyExists")) throw r.error("create container");
  }

  /** Stages one block (`body` of `length` bytes). */
  async putBlock(container: string, blob: string, blockId: string, body: Readable, length: number): Promise<void> {
    this.counters.putBlock++;
    const r = await this.request("PUT", [container, blob], `blockid=${encodeURIComponent(blockId)}&comp=block`, { "content-length": String(length) }, body, length);
    if (r.status !== 201) throw r.error("put block");
  }

  /** Put Blob of a small body (log files, support bundles). */
  async putBlob(container: string, blob: string, body: Buffer, props: { contentType?: string; metadata?: Record<string, string> }): Promise<void> {
    const headers: Record<string, string> = { "content-length": String(body.length), "x-ms-blob-type": "BlockBlob" };
    if (props.contentType) headers["x-ms-blob-content-type"] = props.contentType;
    for (const [k, v] of Object.entries(props.metadata ?? {})) headers[`x-ms-meta-${k}`] = v;
    const r = await this.request("PUT", [container, blob], "", headers, body, body.length);
    if (r.status !== 201) throw r.error("put blob");
  }

  /** The cloud's block lists of a blob (empty when it does not exist). */
  async blockLists(container: string, blob: string): Promise<{ committed: { id: string; size: number }[]; uncommitted: { id: string; size: number }[] }> {
    const r = await this.request("GET", [container, blob], "blocklisttype=all&comp=blocklist", {});
    if (r.status === 404) return { committed: [], uncommitted: [] };
    if (r.status !== 200) throw r.error("get block list");
    return { committed: parseBlocks(r.body, "CommittedBlocks"), uncommitted: parseBlocks(r.body, "UncommittedBlocks") };
  }

  async putBlockList(container: string, blob: string, ids: readonly string[], props: { contentType?: string; metadata: Record<string, string> }): Promise<void> {
    this.counters.putBlockList++;
    const xml = `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${esc(id)}</Latest>`).join("")}</BlockList>`;
    const body = Buffer.from(xml, "utf8");
    const headers: Record<string, string> = { "content-type": "application/xml", "content-length": String(body.length) };
    if (props.contentType) headers["x-ms-blob-content-type"] = props.contentType;
    for (const [k, v] of Object.entries(props.metadata)) headers[`x-ms-meta-${k}`] = v;
    const r = await this.request("PUT", [container, blob], "comp=blocklist", headers, body, body.length);
    if (r.status !== 201) throw r.error("put block list");
  }

  private request(method: string, names: string[], query: string, headers: Record<string, string>, body?: Readable | Buffer, length = 0): Promise<{ status: number; code: string; body: string; error: (what: string) => CloudError }> {
    const base = this.account.endpoint.pathname.replace(/\/+$/, "");
    const path = `${base}/${names.map((n, i) => (i === 0 ? encodeURIComponent(n) : n.split("/").map(encodeURIComponent).join("/"))).join("/")}`;
    const all: Record<string, string> = {
      ...headers,
      "x-ms-date": new Date().toUTCString(),
      "x-ms-version": API_VERSION,
      "x-ms-client-request-id": randomUUID(),
    };
    if (body === undefined) all["content-length"] = "0";
    all["authorization"] = signRequest(this.account.account, this.account.key, { method, path, query, headers: all });
    return new Promise((resolve, reject) => {
      const req = this.lib.request({
        method,
        host: this.account.endpoint.hostname,
        port: this.account.endpoint.port || (this.account.endpoint.protocol === "https:" ? 443 : 80),
        path: query ? `${path}?${query}` : path,
        headers: all,
        agent: this.agent,
        timeout: this.opts.timeoutMs,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const code = String(res.headers["x-ms-error-code"] ?? /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? "");
          const status = res.statusCode ?? 0;
          resolve({ status, code, body: text, error: (what) => new CloudError(status, code, `cloud ${what} on ${names.join("/")}: ${status} ${code}`) });
        });
      });
      req.on("timeout", () => req.destroy(new CloudError(0, "Timeout", `cloud ${method} ${names.join("/")}: no progress for ${this.opts.timeoutMs} ms`)));
      req.on("error", reject);
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        body.on("data", (c: Buffer) => {
          this.counters.bytesSent += c.length;
        });
        body.on("error", (err) => req.destroy(err));
        body.pipe(req);
      }
      void length;
    });
  }
}
