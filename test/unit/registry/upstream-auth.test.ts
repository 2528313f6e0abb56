import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { parseChallenges, registrableDomain, sameRegistrableDomain, UpstreamClient } from "../../../plugins/registry-cache/index.js";
import { silentLogger } from "../../../core/index.js";

test("challenges: quoted commas stay inside values; several challenges in one header", () => {
  const c = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push", Basic realm="x"');
  assert.equal(c.length, 2);
  assert.equal(c[0]!.scheme, "bearer");
  assert.equal(c[0]!.params.scope, "repository:a/b:pull,push");
  assert.equal(c[0]!.params.service, "registry.docker.io");
  assert.deepEqual(c[1], { scheme: "basic", params: { realm: "x" } });
  assert.deepEqual(parseChallenges(undefined), []);
});

test("registrable domain: docker.io's realm is allowed, another domain and another IP are not", () => {
  assert.equal(registrableDomain("registry-1.docker.io"), "docker.io");
  assert.equal(registrableDomain("a.b.example.co.uk"), "example.co.uk");
  assert.ok(sameRegistrableDomain("registry-1.docker.io", "auth.docker.io"));
  assert.ok(!sameRegistrableDomain("registry-1.docker.io", "docker.io.evil.com"));
  assert.ok(!sameRegistrableDomain("127.0.0.1", "127.0.0.2"));
});

/** A registry that demands a bearer token from a realm on `realmHost`, and redirects blobs to another origin. */
async function tokenRegistry(realmHost: string): Promise<{ url: string; seen: { path: string; auth?: string }[]; close(): Promise<void>; other: http.Server }> {
  const seen: { path: string; auth?: string }[] = [];
  const other = http.createServer((req, res) => {
    seen.push({ path: `other:${req.url}`, ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    res.end("blob-bytes");
  });
  await new Promise<void>((r) => other.listen(0, "127.0.0.1", () => r()));
  const otherPort = (other.address() as AddressInfo).port;
  const server = http.createServer((req, res) => {
    seen.push({ path: req.url ?? "", ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    const port = (server.address() as AddressInfo).port;
    if (req.url?.startsWith("/token")) {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ token: "T1", expires_in: 300 }));
      return;
    }
    if (req.headers.authorization !== "Bearer T1") {
      res.writeHead(401, { "www-authenticate": `Bearer realm="http://${realmHost}:${port}/token",service="reg",scope="repository:a:pull"` });
      res.end();
      return;
    }
    if (req.url?.includes("/blobs/")) {
      res.writeHead(307, { location: `http://localhost:${otherPort}/storage/blob` });
      res.end();
      return;
    }
    res.end("ok");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    other,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => other.close(() => r()));
    },
  };
}

test("bearer: token fetched once per scope with basic credentials; redirect to another origin carries no Authorization", async (t) => {
  const reg = await tokenRegistry("127.0.0.1");
  t.after(() => reg.close());
  const client = new UpstreamClient({ name: "u", url: reg.url, credentials: () => ({ username: "me", password: "pw" }), timeoutMs: 2000, logger: silentLogger() });
  t.after(() => client.close());
  const r1 = await client.request("GET", "/v2/a/manifests/x", { scope: "repository:a:pull" });
  r1.resume();
  assert.equal(r1.statusCode, 200);
  const r2 = await client.request("GET", "/v2/a/manifests/y", { scope: "repository:a:pull" });
  r2.resume();
  const tokenCalls = reg.seen.filter((s) => s.path.startsWith("/token"));
  assert.equal(tokenCalls.length, 1);
  assert.equal(tokenCalls[0]!.auth, `Basic ${Buffer.from("me:pw").toString("base64")}`);
  assert.match(tokenCalls[0]!.path, /scope=repository%3Aa%3Apull/);
  const blob = await client.request("GET", "/v2/a/blobs/sha256:x", { scope: "repository:a:pull" });
  let body = "";
  for await (const c of blob) body += c;
  assert.equal(body, "blob-bytes");
  const atOther = reg.seen.find((s) => s.path.startsWith("other:"));
  assert.ok(atOther);
  assert.equal(atOther.auth, undefined, "Authorization must not follow a redirect to another origin");
});

test("bearer: a realm outside the upstream's registrable domain is refused, credentials never sent", async (t) => {
  const reg = await tokenRegistry("localhost");
  t.after(() => reg.close());
  const client = new UpstreamClient({ name: "u", url: reg.url, credentials: () => ({ username: "me", password: "pw" }), timeoutMs: 2000, logger: silentLogger() });
  t.after(() => client.close());
  await assert.rejects(client.request("GET", "/v2/a/manifests/x", { scope: "repository:a:pull" }), (e: Error & { code?: string }) => e.code === "STRATA_REGISTRY_REALM_FOREIGN");
  assert.equal(reg.seen.filter((s) => s.path.startsWith("/token")).length, 0);
});

test("a kept-alive socket the upstream dropped while idle: the GET is sent again once on a fresh socket", async (t) => {
  // The second request on the first connection meets a socket the server destroys without answering (what a
  // server closing an idle keep-alive socket looks like to the client that just reused it).
  let connections = 0;
  const server = http.createServer((req, res) => {
    const n = (req.socket as { n?: number }).n;
    if (n === 1 && (req.socket as { served?: number }).served === 1) return req.socket.destroy();
    (req.socket as { served?: number }).served = ((req.socket as { served?: number }).served ?? 0) + 1;
    res.end(`ok ${req.url}`);
  });
  server.on("connection", (s) => ((s as unknown as { n: number }).n = ++connections));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const client = new UpstreamClient({ name: "stale", url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutMs: 2000, logger: silentLogger() });
  const read = async (path: string): Promise<string> => {
    const res = await client.request("GET", path, { scope: "repository:a:pull" });
    let body = "";
    for await (const chunk of res) body += String(chunk);
    return body;
  };
  assert.equal(await read("/v2/a/manifests/1"), "ok /v2/a/manifests/1");
  assert.equal(await read("/v2/a/manifests/2"), "ok /v2/a/manifests/2");
  assert.equal(connections, 2, "the retry went out on a new connection");
});
