import http, { type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import https from "node:https";
import { StrataError, type Logger } from "../../../core/index.js";
import { parseChallenges } from "./challenge.js";
import { sameRegistrableDomain } from "./domain.js";

/** Basic credentials for an upstream; a function so a gateway's SAS token is signed fresh when needed. */
export interface BasicCredentials {
  username: string;
  password: string;
}

export interface UpstreamClientOptions {
  /** The upstream's name in config (logs and errors). */
  name: string;
  /** Base URL: `https://registry-1.docker.io` (a path prefix is kept: `https://host/mirror`). */
  url: string;
  credentials?: () => BasicCredentials;
  /** PEM CAs to trust for this upstream (default: node's bundle). */
  ca?: string;
  /** TLS server name, when the URL's host is an address that differs from the certificate's name. */
  servername?: string;
  /** Idle timeout per request (no bytes for this long fails it). */
  timeoutMs: number;
  logger: Logger;
}

export interface UpstreamRequest {
  headers?: Record<string, string>;
  /** The token scope, `repository:<name>:pull`. */
  scope: string;
}

const MAX_REDIRECTS = 5;
/** Refresh bearer tokens this long before they expire. */
const TOKEN_MARGIN_MS = 10_000;

/**
 * The pull half of the OCI distribution client, on node:http (see README: why not docker-registry-client).
 * Answers challenges (Bearer with a per-scope token cache, realm restricted to the upstream's registrable
 * domain; Basic), follows redirects without sending Authorization to another origin, and hands back the
 * raw response for the caller to stream and verify.
 */
export class UpstreamClient {
  readonly name: string;
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();
  /** Set after a Basic challenge: send Basic up front from then on. */
  private basic = false;

  constructor(private readonly opts: UpstreamClientOptions) {
    this.name = opts.name;
    this.base = new URL(opts.url.endsWith("/") ? opts.url.slice(0, -1) : opts.url);
    this.agent = this.base.protocol === "https:"
      ? new https.Agent({ keepAlive: true, ca: opts.ca, servername: opts.servername, maxSockets: 64 })
      : new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  get host(): string {
    return this.base.host;
  }

  /** GET or HEAD `path` (starting `/v2/`) on the upstream; resolves with the final response (any status). */
  async request(method: "GET" | "HEAD", path: string, req: UpstreamRequest): Promise<IncomingMessage> {
    const url = new URL(this.base.pathname.replace(/\/$/, "") + path, this.base);
    const first = await this.send(method, url, this.authorization(req.scope), req);
    if (first.status !== 401) return first.res;
    const challenges = parseChallenges(first.res.headers["www-authenticate"]);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basicChallenge = challenges.find((c) => c.scheme === "basic");
    let retryAuth: string | undefined;
    if (bearer?.params.realm) {
      retryAuth = `Bearer ${await this.fetchToken(bearer.params.realm, bearer.params.service, bearer.params.scope ?? req.scope, req.scope)}`;
    } else if (basicChallenge && this.opts.credentials) {
      this.basic = true;
      retryAuth = basicHeader(this.opts.credentials());
    }
    if (!retryAuth) return first.res;
    first.res.resume();
    return (await this.send(method, url, retryAuth, req)).res;
  }

  close(): void {
    this.agent.destroy();
  }

  private authorization(scope: string): string | undefined {
    const cached = this.tokens.get(scope);
    if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    if (this.basic && this.opts.credentials) return basicHeader(this.opts.credentials());
    return undefined;
  }

  /** Sends one request and follows redirects; Authorization goes only to the upstream's own origin. */
  private async send(method: string, url: URL, auth: string | undefined, req: UpstreamRequest): Promise<{ status: number; res: IncomingMessage }> {
    let current = url;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const sameOrigin = current.origin === this.base.origin;
      const headers: OutgoingHttpHeaders = { ...req.headers, "user-agent": "strata-registry-cache" };
      if (auth && sameOrigin) headers.authorization = auth;
      const res = await this.once(method, current, headers, sameOrigin);
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if ([301, 302, 303, 307, 308].includes(status) && location) {
        res.resume();
        current = new URL(location, current);
        continue;
      }
      return { status, res };
    }
    throw new StrataError("STRATA_REGISTRY_UPSTREAM_REDIRECTS", `upstream ${this.name}: more than ${MAX_REDIRECTS} redirects for ${url.pathname}; check the upstream url`);
  }

  private async once(method: string, url: URL, headers: OutgoingHttpHeaders, sameOrigin: boolean): Promise<IncomingMessage> {
    try {
      return await this.attempt(method, url, headers, sameOrigin);
    } catch (err) {
      // A kept-alive socket the upstream closed while idle fails the request that reuses it before any byte of an
      // answer: node's documented race (request.reusedSocket). Every request here is a GET or HEAD: sent again once.
      if (!(err instanceof StaleSocket)) throw err;
      return await this.attempt(method, url, headers, sameOrigin, false);
    }
  }

  private attempt(method: string, url: URL, headers: OutgoingHttpHeaders, sameOrigin: boolean, retryStale = true): Promise<IncomingMessage> {
    const isHttps = url.protocol === "https:";
    // Another origin (a blob CDN) gets node's default trust and no shared agent state.
    const agent = sameOrigin ? this.agent : undefined;
    const options: https.RequestOptions = { method, headers, agent, ...(sameOrigin && isHttps && this.opts.servername ? { servername: this.opts.servername } : {}) };
    return new Promise((resolve, reject) => {
      const r = (isHttps ? https : http).request(url, options, (res) => {
        res.setTimeout?.(this.opts.timeoutMs);
        resolve(res);
      });
      r.setTimeout(this.opts.timeoutMs, () => r.destroy(new Error(`no response within ${this.opts.timeoutMs} ms`)));
      r.on("error", (err: NodeJS.ErrnoException) => {
        if (retryStale && r.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE")) return reject(new StaleSocket());
        reject(new StrataError("STRATA_REGISTRY_UPSTREAM_UNREACHABLE", `upstream ${this.name} (${url.host}) cannot be reached: ${err.message}; check the upstream url and the network`, { cause: err }));
      });
      r.end();
    });
  }

  private async fetchToken(realm: string, service: string | undefined, scope: string, cacheKey: string): Promise<string> {
    const realmUrl = new URL(realm);
    if (!sameRegistrableDomain(this.base.hostname, realmUrl.hostname)) {
      throw new StrataError(
        "STRATA_REGISTRY_REALM_FOREIGN",
        `upstream ${this.name} (${this.base.hostname}) asked for a token from ${realmUrl.hostname}, outside its registrable domain; ` +
          `credentials are never sent there: point the upstream url at the registry itself`,
      );
    }
    if (service) realmUrl.searchParams.set("service", service);
    realmUrl.searchParams.set("scope", scope);
    const headers: Record<string, string> = { accept: "application/json" };
    // Credentials never travel in clear text to a host other than the upstream itself.
    if (this.opts.credentials && (realmUrl.protocol === "https:" || realmUrl.hostname === this.base.hostname)) {
      headers.authorization = basicHeader(this.opts.credentials());
    }
    const res = await this.once("GET", realmUrl, { ...headers, "user-agent": "strata-registry-cache" }, realmUrl.origin === this.base.origin);
    const body = await readAll(res, 1024 * 1024);
    if (res.statusCode !== 200) {
      throw new StrataError("STRATA_REGISTRY_UPSTREAM_AUTH", `upstream ${this.name}: token request to ${realmUrl.host} answered ${res.statusCode}; check the upstream's username and password_file`);
    }
    let parsed: { token?: string; access_token?: string; expires_in?: number };
    try {
      parsed = JSON.parse(body.toString("utf8")) as typeof parsed;
    } catch (err) {
      throw new StrataError("STRATA_REGISTRY_UPSTREAM_AUTH", `upstream ${this.name}: token response from ${realmUrl.host} is not JSON`, { cause: err });
    }
    const token = parsed.token ?? parsed.access_token;
    if (!token) throw new StrataError("STRATA_REGISTRY_UPSTREAM_AUTH", `upstream ${this.name}: token response from ${realmUrl.host} has neither token nor access_token`);
    const ttlMs = (typeof parsed.expires_in === "number" && parsed.expires_in > 0 ? parsed.expires_in : 60) * 1000;
    this.tokens.set(cacheKey, { token, expiresAt: Date.now() + Math.max(0, ttlMs - TOKEN_MARGIN_MS) });
    return token;
  }
}

function basicHeader(c: BasicCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

/** Reads a whole (small) response body, failing beyond `limit` bytes. */
export async function readAll(res: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.destroy();
      throw new StrataError("STRATA_REGISTRY_TOO_LARGE", `an upstream response exceeded ${limit} bytes; raise max_manifest_bytes if this manifest is genuine`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A request failed on a reused keep-alive socket before any answer (see UpstreamClient.once). */
class StaleSocket extends Error {}
