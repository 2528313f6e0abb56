import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { silentLogger } from "../../../core/index.js";
import { createRootCa, issueServerCert } from "../../../core/pki/certs.js";
import { ParentProxy } from "../../../plugins/https-front/parent-proxy.js";

/**
 * A parent that serves the first request of its first connection, then destroys that connection when a second
 * request arrives on it: what a parent closing an idle keep-alive socket looks like to the child reusing it.
 */
async function flakyParent(t: { after(fn: () => unknown): void }) {
  const ca = await createRootCa({ commonName: "proxy test CA" });
  const cert = await issueServerCert(ca, { hostnames: ["localhost"] });
  const served = new WeakMap<Socket, number>();
  let connections = 0;
  const seen: string[] = [];
  const server = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    const n = served.get(req.socket) ?? 0;
    if (n === 1 && connections === 1) return req.socket.destroy();
    served.set(req.socket, n + 1);
    seen.push(`${req.method} ${req.url}`);
    res.end(`ok ${req.method} ${req.url}`);
  });
  server.on("secureConnection", () => connections++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { ca: ca.cert, port: (server.address() as AddressInfo).port, seen, connections: () => connections };
}

async function front(t: { after(fn: () => unknown): void }, proxy: ParentProxy): Promise<number> {
  const server = http.createServer((req, res) => proxy.forward(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  t.after(() => new Promise<void>((r) => { proxy.close(); server.close(() => r()); }));
  return (server.address() as AddressInfo).port;
}

async function call(port: number, method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, agent: false }, (res) => {
      let text = "";
      res.on("data", (c) => (text += String(c)));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("a GET that meets a kept-alive socket the parent dropped is sent once more on a fresh one", async (t) => {
  const parent = await flakyParent(t);
  const port = await front(t, new ParentProxy({ host: "127.0.0.1", port: parent.port, servername: "localhost", ca: parent.ca }, 2000, silentLogger()));
  assert.deepEqual(await call(port, "GET", "/v2/a"), { status: 200, text: "ok GET /v2/a" });
  assert.deepEqual(await call(port, "GET", "/v2/b"), { status: 200, text: "ok GET /v2/b" });
  assert.equal(parent.connections(), 2);
  assert.deepEqual(parent.seen, ["GET /v2/a", "GET /v2/b"]);
});

test("a POST that meets a dropped socket is not sent again: 502 naming the reason", async (t) => {
  const parent = await flakyParent(t);
  const port = await front(t, new ParentProxy({ host: "127.0.0.1", port: parent.port, servername: "localhost", ca: parent.ca }, 2000, silentLogger()));
  assert.equal((await call(port, "GET", "/v2/a")).status, 200);
  const r = await call(port, "POST", "/v2/a/blobs/uploads/", "data");
  assert.equal(r.status, 502);
  assert.match(r.text, /dropped the connection/);
  assert.deepEqual(parent.seen, ["GET /v2/a"]);
});
