// A small JSON-over-HTTPS client for another gateway's (or this gateway's own) `/$strata/*` routes.
import https from "node:https";
import { isIP } from "node:net";
import tls from "node:tls";
import { StrataError } from "../errors.js";
import { signSas } from "../identity/sas.js";

export interface GatewayClientOptions {
  /** Where to connect (an address, or a name that resolves). */
  host: string;
  port: number;
  /** The name the server certificate must carry (a DNS name or an IP address). */
  hostname: string;
  /** PEM trust bundle (the hierarchy's root CA); a function to pick up a bundle changed while running (root CA rollover). */
  ca: string | (() => string);
  /** The Authorization header for each request (signed afresh so long-lived clients never send an expired one). */
  token: () => string;
}

export interface GatewayResponse {
  status: number;
  body: unknown;
  /** The other gateway's clock: its `Date` header (ms, 1 s resolution), when it sent one. */
  date?: number;
  /** This gateway's clock when the request went out and when the answer's headers came (for the offset's midpoint). */
  sentAt?: number;
  receivedAt?: number;
}

/** The transport failed (unreachable, TLS, timeout): no HTTP status came back. */
export class GatewayUnreachable extends StrataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("STRATA_SCOPE_UNREACHABLE", message, options);
    this.name = "GatewayUnreachable";
  }
}

export class GatewayClient {
  private readonly agent = new https.Agent({ keepAlive: true, maxSockets: 4 });

  constructor(private readonly opts: GatewayClientOptions) {}

  get target(): string {
    return `https://${this.opts.host}:${this.opts.port}`;
  }

  /** JSON in and out; any HTTP status resolves, transport failures reject with GatewayUnreachable. */
  request(method: string, path: string, body?: unknown, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<GatewayResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const { hostname } = this.opts;
    return new Promise((resolve, reject) => {
      const sentAt = Date.now();
      const req = https.request({
        agent: this.agent,
        host: this.opts.host,
        port: this.opts.port,
        method,
        path,
        ca: typeof this.opts.ca === "function" ? this.opts.ca() : this.opts.ca,
        // SNI carries names only; the certificate is checked against the configured name either way.
        servername: isIP(hostname) ? undefined : hostname,
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity(hostname, cert),
        headers: {
          Authorization: this.opts.token(),
          Accept: "application/json",
          ...(payload ? { "Content-Type": "application/json", "Content-Length": payload.length } : {}),
        },
        timeout: o.timeoutMs ?? 10_000,
        signal: o.signal,
      }, (res) => {
        const receivedAt = Date.now();
        const date = Date.parse(res.headers.date ?? "");
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err) => reject(new GatewayUnreachable(`${this.target}: ${err.message}`, { cause: err })));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON (a proxy's error page): hand the text back as it is
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, sentAt, receivedAt, ...(Number.isFinite(date) ? { date } : {}) });
        });
      });
      req.on("timeout", () => req.destroy(new Error(`no answer within ${o.timeoutMs ?? 10_000} ms; check the network and [parent] address/https_port`)));
      req.on("error", (err) => reject(new GatewayUnreachable(`${this.target}: ${err.message}`, { cause: err })));
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A token for gateway `deviceId` signed with its identity key, valid for an hour. */
export function deviceTokenSigner(hub: string, deviceId: string, key: string): () => string {
  return () => signSas({ resource: `${hub}/devices/${deviceId}`, key, expirySecs: Math.floor(Date.now() / 1000) + 3600 });
}

/** An `iothubowner` token for the hub, valid for five minutes. */
export function ownerTokenSigner(hub: string, key: string): () => string {
  return () => signSas({ resource: hub, key, keyName: "iothubowner", expirySecs: Math.floor(Date.now() / 1000) + 300 });
}

/** The message of a `{ message }` error body, or the body as text. */
export function errorText(body: unknown): string {
  if (body && typeof body === "object" && typeof (body as { message?: unknown }).message === "string") return (body as { message: string }).message;
  return typeof body === "string" ? body.slice(0, 500) : JSON.stringify(body ?? "").slice(0, 500);
}
