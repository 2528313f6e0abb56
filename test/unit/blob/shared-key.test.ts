import { randomBytes } from "node:crypto";
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHttpHeaders, createPipelineRequest } from "@azure/core-rest-pipeline";
import { StorageSharedKeyCredential } from "@azure/storage-blob";
import { canonicalResource, ReplayGuard, signRequest, verifySharedKey } from "../../../plugins/blob/index.js";

const account = "edgelocal";
const key = randomBytes(64).toString("base64");

/** Signs a request with the Azure SDK's own Shared Key policy and returns what our verifier sees. */
async function sdkSigned(method: "PUT" | "GET", url: string, headers: Record<string, string>): Promise<{ method: string; path: string; query: string; headers: Record<string, string> }> {
  const cred = new StorageSharedKeyCredential(account, key);
  const request = createPipelineRequest({ url, method, headers: createHttpHeaders(headers) });
  let seen: typeof request | undefined;
  const policy = cred.create({ sendRequest: async (r: unknown) => { seen = r as typeof request; return {} as never; } } as never, { log: () => undefined, shouldLog: () => false } as never);
  await (policy as unknown as { sendRequest(r: unknown): Promise<unknown> }).sendRequest(compat(request));
  const u = new URL(url);
  const flat: Record<string, string> = {};
  for (const h of (seen as unknown as { headers: { headersArray(): { name: string; value: string }[] } }).headers.headersArray()) flat[h.name.toLowerCase()] = h.value;
  return { method, path: u.pathname, query: u.search.slice(1), headers: flat };
}

/** The SDK's v1 credential policy signs a WebResource; give it the fields it reads. */
function compat(r: ReturnType<typeof createPipelineRequest>): unknown {
  const headers = new Map<string, string>();
  for (const [k, v] of r.headers) headers.set(k.toLowerCase(), v);
  return {
    url: r.url, method: r.method, body: undefined,
    headers: {
      set: (k: string, v: string | number) => headers.set(k.toLowerCase(), String(v)),
      get: (k: string) => headers.get(k.toLowerCase()),
      headersArray: () => [...headers].map(([name, value]) => ({ name, value })),
    },
  };
}

test("a request signed by @azure/storage-blob verifies; any change to what is signed does not", async () => {
  const req = await sdkSigned("PUT", "https://gw:443/blob/edgelocal/c1/dir/a%20b.txt?comp=block&blockid=QUFB", {
    "content-length": "11", "x-ms-version": "2021-08-06", "x-ms-meta-Zeta": "1", "x-ms-meta-alpha": "2", "x-ms-client-request-id": "r1", "content-type": "text/plain",
  });
  assert.equal(verifySharedKey(account, key, req).ok, true);
  assert.equal(verifySharedKey(account, randomBytes(64).toString("base64"), req).ok, false);
  assert.equal(verifySharedKey(account, key, { ...req, path: "/blob/edgelocal/c1/dir/other.txt" }).ok, false);
  assert.equal(verifySharedKey(account, key, { ...req, query: "comp=block&blockid=QUFC" }).ok, false);
  assert.equal(verifySharedKey(account, key, { ...req, headers: { ...req.headers, "content-length": "12" } }).ok, false);
  assert.equal(verifySharedKey(account, key, { ...req, headers: { ...req.headers, "x-ms-meta-alpha": "3" } }).ok, false);
  assert.equal(verifySharedKey("other", key, req).ok, false);
  const unsigned = { ...req, headers: { ...req.headers, authorization: undefined } };
  assert.match((verifySharedKey(account, key, unsigned) as { reason: string }).reason, /unsigned/);
});

test("our outbound signer produces what the verifier (and so Azure) accepts", () => {
  const headers: Record<string, string | undefined> = { "x-ms-date": new Date().toUTCString(), "x-ms-version": "2021-08-06", "content-length": "0" };
  headers["authorization"] = signRequest(account, key, { method: "GET", path: "/edgelocal/c", query: "restype=container&comp=list", headers });
  assert.equal(verifySharedKey(account, key, { method: "GET", path: "/edgelocal/c", query: "restype=container&comp=list", headers }).ok, true);
});

test("canonical resource: query names lower-cased and sorted, values decoded", () => {
  assert.equal(canonicalResource("a", { path: "/a/c/b", query: "restype=container&comp=list&Prefix=x%2Fy" }), "/a/a/c/b\ncomp:list\nprefix:x/y\nrestype:container");
});

test("replay guard: a signature is accepted once inside its window, again after it", () => {
  const g = new ReplayGuard(1000);
  assert.equal(g.firstUse("s", 0), true);
  assert.equal(g.firstUse("s", 500), false);
  assert.equal(g.firstUse("t", 500), true);
  assert.equal(g.firstUse("s", 2500), true);
});
