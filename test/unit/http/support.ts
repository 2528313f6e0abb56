// Shared fixtures for the http tests: one development PKI per process, an HttpFront on 127.0.0.1:0, and
// small HTTPS/WebSocket clients that trust the dev root.
import https from "node:https";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { WebSocket } from "ws";
import { HttpFront, type HttpFrontOptions } from "../../../core/http/index.js";
import { ensureDevPki, type DevPki } from "../../../core/pki/index.js";

let devPki: Promise<DevPki> | undefined;

/** The process-wide dev PKI (generated once: keys cost tens of ms each). */
export function testPki(): Promise<DevPki> {
  devPki ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "strata-http-"));
    after(() => rm(dir, { recursive: true, force: true }));
    return ensureDevPki(dir);
  })();
  return devPki;
}

interface Cleanup {
  after(fn: () => Promise<void> | void): void;
}

/** An HttpFront with the dev server chain on 127.0.0.1:0; `mount` runs before listen; closed after the test. */
export async function startFront(
  t: Cleanup,
  mount: (front: HttpFront) => void = () => undefined,
  opts: Partial<HttpFrontOptions> = {},
): Promise<{ front: HttpFront; port: number; pki: DevPki }> {
  const pki = await testPki();
  const front = new HttpFront({
    tls: { cert: pki.server.chain, key: pki.server.key, ca: pki.trustBundle },
    address: "127.0.0.1",
    port: 0,
    ...opts,
  });
  t.after(() => front.close());
  mount(front);
  const { port } = await front.listen();
  return { front, port, pki };
}

export interface Reply {
  status: number;
  headers: import("node:http").IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTPS request trusting the dev root; `agent: false` so every request gets its own connection. */
export function request(
  port: number,
  ca: string,
  opts: https.RequestOptions & { body?: Buffer | string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const { body, ...rest } = opts;
    const req = https.request({ host: "127.0.0.1", servername: "localhost", port, ca, agent: false, ...rest }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Opens a WebSocket; resolves when open, or with the HTTP status the server refused it with. */
export function openWs(
  port: number,
  ca: string,
  path: string,
  protocols: string[],
): Promise<{ ws: WebSocket; status?: undefined } | { ws?: undefined; status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}${path}`, protocols, { ca });
    ws.once("open", () => resolve({ ws }));
    ws.once("unexpected-response", (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.once("error", reject);
  });
}

/** The next message on `ws`, as text. */
export function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once("message", (data) => resolve(String(data)));
    ws.once("error", reject);
  });
}
