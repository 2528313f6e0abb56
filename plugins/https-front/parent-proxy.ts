import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import httpProxy from "http-proxy";
import type { Logger } from "../../core/index.js";

/** RFC 9110 §7.6.1 hop-by-hop headers: never forwarded, either way. */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"];

export interface ParentTarget {
  /** Where to connect (`[parent] address` ?? hostname). */
  host: string;
  port: number;
  /** TLS name checked on the parent's certificate (`[parent] hostname`). */
  servername: string;
  /** The hierarchy's trust bundle (`[tls] ca_file`). */
  ca: string;
}

/**
 * Streams requests to the parent's front over verified TLS (http-proxy on a keep-alive agent): bodies both
 * ways without buffering, Range and every end-to-end header kept, hop-by-hop headers dropped, redirects
 * handed to the client (never followed here, so a client's Authorization never reaches another host).
 * A parent that is down or slow gets a 502/504 naming the reason.
 */
export class ParentProxy {
  private readonly agent: https.Agent;
  private readonly proxy: httpProxy;
  private readonly target: string;
  /** Requests whose latest attempt went out on a kept-alive socket (see forward). */
  private readonly reused = new WeakSet<IncomingMessage>();

  constructor(private readonly parent: ParentTarget, private readonly timeoutMs: number, private readonly log: Logger) {
    this.agent = new https.Agent({ keepAlive: true, ca: parent.ca, servername: parent.servername, rejectUnauthorized: true, maxSockets: 256 });
    this.target = `https://${parent.host.includes(":") ? `[${parent.host}]` : parent.host}:${parent.port}`;
    this.proxy = httpProxy.createProxyServer({
      agent: this.agent,
      secure: true,
      xfwd: true,
      // The parent sees its own name in Host, the one its certificate carries.
      changeOrigin: false,
      proxyTimeout: timeoutMs,
      ws: false,
    });
    this.proxy.on("proxyReq", (proxyReq, req) => {
      if (proxyReq.reusedSocket) this.reused.add(req);
      else this.reused.delete(req);
      for (const h of hopByHop(req.headers.connection)) proxyReq.removeHeader(h);
      proxyReq.setHeader("host", `${parent.servername}:${parent.port}`);
    });
    this.proxy.on("proxyRes", (proxyRes) => {
      for (const h of hopByHop(proxyRes.headers.connection)) {
        // transfer-encoding is re-derived by node for the client side; keep it so chunked bodies stay chunked.
        if (h !== "transfer-encoding") delete proxyRes.headers[h];
      }
    });
  }

  /** Forwards `req` to the parent at `path` (default: the request's own path and query). */
  forward(req: IncomingMessage, res: ServerResponse, path?: string, retried = false): void {
    if (path !== undefined) req.url = path;
    const started = Date.now();
    // A retry sends no body: only a GET or HEAD is ever sent again, and the request stream was read already.
    const options = retried ? { target: this.target, buffer: Readable.from([]) } : { target: this.target };
    this.proxy.web(req, res, options, (err: Error & { code?: string }) => {
      // A kept-alive socket the parent closed while idle fails the request that reuses it before any answer
      // (node's documented race, request.reusedSocket): a GET or HEAD is sent once more on a fresh socket.
      const idempotent = req.method === "GET" || req.method === "HEAD";
      if (!retried && idempotent && !res.headersSent && this.reused.has(req) && (err.code === "ECONNRESET" || err.code === "EPIPE")) {
        this.reused.delete(req);
        this.forward(req, res, undefined, true);
        return;
      }
      const timedOut = err.code === "ECONNRESET" && Date.now() - started >= this.timeoutMs - 50;
      const status = timedOut || err.code === "ETIMEDOUT" ? 504 : 502;
      const reason = timedOut ? `parent ${this.target} sent no response within ${this.timeoutMs} ms` : describe(err, this.target);
      this.log.warn({ err, url: req.url, status }, "https front could not reach the parent");
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const body = JSON.stringify({ error: reason, code: status === 504 ? "STRATA_FRONT_PARENT_TIMEOUT" : "STRATA_FRONT_PARENT_UNREACHABLE" });
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
  }

  close(): void {
    this.proxy.close();
    this.agent.destroy();
  }
}

function hopByHop(connection: string | string[] | undefined): string[] {
  const listed = (Array.isArray(connection) ? connection.join(",") : connection ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  return [...HOP_BY_HOP, ...listed];
}

function describe(err: Error & { code?: string }, target: string): string {
  switch (err.code) {
    case "ECONNREFUSED":
      return `parent ${target} refused the connection (is its gateway running?)`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `parent host of ${target} does not resolve; set [parent] address`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `parent ${target} is unreachable from here`;
    case "ECONNRESET":
      return `parent ${target} dropped the connection`;
    default:
      if (/certificate|self.signed|unable to verify/i.test(err.message)) return `parent ${target} presented a certificate not trusted by [tls] ca_file: ${err.message}`;
      return `parent ${target} failed: ${err.message}`;
  }
}

