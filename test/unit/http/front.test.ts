import { test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { createHash, randomBytes } from "node:crypto";
import type { TLSSocket } from "node:tls";
import type { IncomingMessage } from "node:http";
import { once } from "node:events";
import pino from "pino";
import { peerCertificate } from "../../../core/http/index.js";
import { issueDeviceCert, issueServerCert } from "../../../core/pki/index.js";
import { isStrataError } from "../../../core/errors.js";
import { nextMessage, openWs, request, startFront } from "./support.js";

const WS_PATH = "/$iothub/websocket";

test("fastify routes and prefixed plugins are served over HTTPS; mounting a route after listen is a clear error", async (t) => {
  const { front, port, pki } = await startFront(t, (f) => {
    f.route({ method: "GET", url: "/health", handler: async () => ({ ok: true }) });
    f.register(
      async (app) => {
        app.post("/echo", async (req) => ({ got: req.body }));
      },
      { prefix: "/api" },
    );
  });
  const health = await request(port, pki.trustBundle, { path: "/health" });
  assert.equal(health.status, 200);
  assert.deepEqual(JSON.parse(health.body.toString()), { ok: true });
  const echo = await request(port, pki.trustBundle, {
    method: "POST",
    path: "/api/echo",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ a: 1 }),
  });
  assert.deepEqual(JSON.parse(echo.body.toString()), { got: { a: 1 } });
  assert.equal((await request(port, pki.trustBundle, { path: "/missing" })).status, 404);

  assert.throws(
    () => front.route({ method: "GET", url: "/late", handler: async () => "late" }),
    (e) => isStrataError(e, "STRATA_HTTP_ALREADY_LISTENING") && /GET \/late/.test(e.message),
  );
  assert.throws(() => front.register(async () => undefined), (e) => isStrataError(e, "STRATA_HTTP_ALREADY_LISTENING"));
});

test("a raw mount streams a large request body as it arrives and is not limited by fastify's body parser", async (t) => {
  const TOTAL = 32 * 1024 * 1024;
  const { port, pki } = await startFront(t, (f) => {
    f.route({ method: "POST", url: "/api/small", handler: async () => "parsed" });
    f.mountRaw("/blob", (req, res) => {
      const hash = createHash("sha256");
      let bytes = 0;
      req.on("data", (chunk: Buffer) => {
        // 1. The response starts at the first chunk: proof the body is not buffered before the handler runs.
        if (bytes === 0) res.writeHead(200, { "content-type": "text/plain" }).write("started\n");
        hash.update(chunk);
        bytes += chunk.length;
      });
      req.on("end", () => res.end(`${bytes} ${hash.digest("hex")}`));
    });
  });

  const body = randomBytes(TOTAL);
  const req = https.request({
    host: "127.0.0.1", port, ca: pki.trustBundle, servername: "localhost", agent: false,
    method: "PUT", path: "/blob/container/name?comp=block", headers: { "transfer-encoding": "chunked" },
  });
  const responded = once(req, "response") as Promise<[IncomingMessage]>;
  req.write(body.subarray(0, 64 * 1024));
  // 2. Only after the server answered the first chunk does the client send the rest.
  const [res] = await responded;
  const chunks: Buffer[] = [];
  res.on("data", (c: Buffer) => chunks.push(c));
  const ended = once(res, "end");
  const [first] = (await once(res, "data")) as [Buffer];
  assert.equal(first.toString(), "started\n");
  for (let off = 64 * 1024; off < TOTAL; off += 1024 * 1024) {
    if (!req.write(body.subarray(off, Math.min(TOTAL, off + 1024 * 1024)))) await once(req, "drain");
  }
  req.end();
  await ended;
  // 3. The handler saw every byte.
  assert.equal(Buffer.concat(chunks).toString(), `started\n${TOTAL} ${createHash("sha256").update(body).digest("hex")}`);

  // The same size to a fastify route is refused by its body limit (1 MiB default).
  const parsed = await request(port, pki.trustBundle, {
    method: "POST", path: "/api/small", headers: { "content-type": "text/plain" }, body: body.subarray(0, 2 * 1024 * 1024),
  });
  assert.equal(parsed.status, 413);
});

test("a raw mount answers Range requests and large downloads itself, longest prefix first", async (t) => {
  const blob = randomBytes(8 * 1024 * 1024);
  const { front, port, pki } = await startFront(t, (f) => {
    f.mountRaw("/v2", (_req, res) => res.end("registry"));
    f.mountRaw("/v2/blobs/", (req, res) => {
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
      if (!range) return void res.writeHead(200, { "content-length": blob.length }).end(blob);
      const [start, end] = [Number(range[1]), Number(range[2])];
      res.writeHead(206, { "content-range": `bytes ${start}-${end}/${blob.length}` }).end(blob.subarray(start, end + 1));
    });
  });
  const whole = await request(port, pki.trustBundle, { path: "/v2/blobs/sha256:abc" });
  assert.equal(whole.status, 200);
  assert.ok(whole.body.equals(blob));
  const part = await request(port, pki.trustBundle, { path: "/v2/blobs/sha256:abc", headers: { range: "bytes=100-199" } });
  assert.equal(part.status, 206);
  assert.ok(part.body.equals(blob.subarray(100, 200)));
  assert.equal((await request(port, pki.trustBundle, { path: "/v2/library/x/manifests/1" })).body.toString(), "registry");
  assert.equal((await request(port, pki.trustBundle, { path: "/v2blob" })).status, 404, "a prefix matches whole segments");

  assert.throws(() => front.mountRaw("/v2/", () => undefined), (e) => isStrataError(e, "STRATA_HTTP_MOUNT_CONFLICT"));
  const unmount = front.mountRaw("/late", (_req, res) => res.end("late"));
  assert.equal((await request(port, pki.trustBundle, { path: "/late/x" })).body.toString(), "late");
  unmount();
  assert.equal((await request(port, pki.trustBundle, { path: "/late/x" })).status, 404);
});

test("WebSocket upgrades are routed by subprotocol, which the server selects; unknown subprotocol 400, unknown path 404", async (t) => {
  const { front, port, pki } = await startFront(t, (f) => {
    f.route({ method: "GET", url: "/health", handler: async () => "ok" });
    f.websocket(WS_PATH, "mqtt", (ws) => ws.on("message", (m) => ws.send(`mqtt:${String(m)}`)));
    f.websocket(WS_PATH, "AMQPWSB10", (ws) => ws.on("message", (m) => ws.send(`amqp:${String(m)}`)));
  });
  const ca = pki.trustBundle;

  const mqtt = await openWs(port, ca, WS_PATH, ["mqtt"]);
  assert.ok(mqtt.ws);
  t.after(() => mqtt.ws.terminate());
  assert.equal(mqtt.ws.protocol, "mqtt");
  mqtt.ws.send("hi");
  assert.equal(await nextMessage(mqtt.ws), "mqtt:hi");

  const amqp = await openWs(port, ca, WS_PATH, ["AMQPWSB10"]);
  assert.ok(amqp.ws);
  t.after(() => amqp.ws.terminate());
  assert.equal(amqp.ws.protocol, "AMQPWSB10");
  amqp.ws.send("hi");
  assert.equal(await nextMessage(amqp.ws), "amqp:hi");

  const preferred = await openWs(port, ca, WS_PATH, ["v12.stomp", "AMQPWSB10", "mqtt"]);
  assert.equal(preferred.ws?.protocol, "AMQPWSB10", "the first offered protocol that has a handler wins");
  preferred.ws?.terminate();

  assert.equal((await openWs(port, ca, WS_PATH, ["v12.stomp"])).status, 400);
  assert.equal((await openWs(port, ca, WS_PATH, [])).status, 400);
  assert.equal((await openWs(port, ca, "/elsewhere", ["mqtt"])).status, 404);

  // The refusals disturbed nobody: the open sockets and the routes still work.
  mqtt.ws.send("again");
  assert.equal(await nextMessage(mqtt.ws), "mqtt:again");
  assert.equal((await request(port, ca, { path: "/health" })).body.toString(), "ok");

  assert.throws(() => front.websocket(WS_PATH, "mqtt", () => undefined), (e) => isStrataError(e, "STRATA_HTTP_MOUNT_CONFLICT"));
  const unmount = front.websocket("/late", "mqtt", (ws) => ws.close());
  assert.equal((await openWs(port, ca, "/late", ["mqtt"])).ws?.protocol, "mqtt");
  unmount();
  assert.equal((await openWs(port, ca, "/late", ["mqtt"])).status, 404);
});

/** A request on `agent`; resolves with the server certificate's fingerprint and whether the socket was reused. */
function fingerprintVia(agent: https.Agent, port: number): Promise<{ fingerprint: string; reused: boolean; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: "127.0.0.1", port, agent, path: "/health" }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ fingerprint, reused: req.reusedSocket, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

test("setCertificate serves the new certificate to new connections while an open one keeps working", async (t) => {
  const { front, port, pki } = await startFront(t, (f) => f.route({ method: "GET", url: "/health", handler: async () => "ok" }));
  const renewed = await issueServerCert(pki.edgeCa, { hostnames: ["localhost"], ips: ["127.0.0.1"] });
  const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 1, ca: pki.trustBundle });
  t.after(() => keepAlive.destroy());

  const before = await fingerprintVia(keepAlive, port);
  front.setCertificate(renewed.chain, renewed.key);
  const fresh = new https.Agent({ ca: pki.trustBundle });
  t.after(() => fresh.destroy());
  const after = await fingerprintVia(fresh, port);
  const old = await fingerprintVia(keepAlive, port);

  assert.notEqual(after.fingerprint, before.fingerprint, "new connections get the new certificate");
  assert.equal(old.reused, true, "the keep-alive connection stayed open across the swap");
  assert.equal(old.fingerprint, before.fingerprint);
  assert.equal(old.body, "ok");
  assert.throws(() => front.setCertificate(renewed.chain, pki.server.key), (e) => isStrataError(e, "STRATA_HTTP_TLS_INVALID"));
});

test("a client certificate is optional and, when presented, readable by handlers", async (t) => {
  const { port, pki } = await startFront(t, (f) =>
    f.route({
      method: "GET",
      url: "/whoami",
      handler: async (req) => {
        const cert = peerCertificate(req.raw);
        const socket = req.raw.socket as TLSSocket;
        return cert ? `${String(cert.subject.CN)} authorized=${socket.authorized}` : "anonymous";
      },
    }),
  );
  const device = await issueDeviceCert(pki.edgeCa, "sensor-1");
  const withCert = await request(port, pki.trustBundle, { path: "/whoami", cert: device.chain, key: device.key });
  assert.equal(withCert.body.toString(), "sensor-1 authorized=true");
  assert.equal((await request(port, pki.trustBundle, { path: "/whoami" })).body.toString(), "anonymous");
});

test("close() is bounded: it closes WebSockets (1001) and drops requests still running after the timeout", async (t) => {
  let hung!: () => void;
  const handlerReached = new Promise<void>((resolve) => (hung = resolve));
  const { front, port, pki } = await startFront(
    t,
    (f) => {
      f.websocket(WS_PATH, "mqtt", () => undefined);
      f.mountRaw("/hang", (_req, res) => {
        res.writeHead(200).write("partial");
        hung(); // never ends the response
      });
    },
    { closeTimeoutMs: 300 },
  );
  const opened = await openWs(port, pki.trustBundle, WS_PATH, ["mqtt"]);
  assert.ok(opened.ws);
  const wsClosed = once(opened.ws, "close");
  const hanging = request(port, pki.trustBundle, { path: "/hang" }).then(() => "ended", (e: Error) => e.message);
  await handlerReached;

  const started = Date.now();
  await front.close();
  const took = Date.now() - started;
  const [code] = (await wsClosed) as [number];
  assert.equal(code, 1001);
  assert.equal(await hanging, "aborted");
  assert.ok(took >= 250 && took < 2000, `close took ${took} ms`);
  await front.close(); // idempotent
});

test("refused upgrades are logged with the path and the offered subprotocols", async (t) => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const { port, pki } = await startFront(t, (f) => f.websocket(WS_PATH, "mqtt", () => undefined), { logger });
  assert.equal((await openWs(port, pki.trustBundle, WS_PATH, ["AMQPWSB10"])).status, 400);
  assert.equal((await openWs(port, pki.trustBundle, "/nope", ["mqtt"])).status, 404);
  assert.deepEqual(
    lines.map((l) => [l.msg, l.path, l.protocols]),
    [
      ["websocket upgrade refused: no matching subprotocol", WS_PATH, ["AMQPWSB10"]],
      ["websocket upgrade refused: no handler for path", "/nope", ["mqtt"]],
    ],
  );
});
