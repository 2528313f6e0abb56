import { randomBytes, randomUUID } from "node:crypto";
import https from "node:https";
import { test } from "node:test";
import assert from "node:assert/strict";
import { signRequest } from "../../../plugins/blob/index.js";
import { startBlobGateway, type BlobGateway } from "./harness.js";

interface Answer {
  status: number;
  code: string;
  body: string;
}

/** One raw request to the gateway, signed with `key` unless `sign` is false; `headers` override the signed ones. */
function call(gw: BlobGateway, method: string, rawPath: string, opts: { key?: string; sign?: boolean; body?: Buffer; headers?: Record<string, string>; date?: Date } = {}): { send: () => Promise<Answer>; headers: Record<string, string> } {
  const [path, query = ""] = rawPath.split("?") as [string, string?];
  const headers: Record<string, string> = {
    "x-ms-date": (opts.date ?? new Date()).toUTCString(),
    "x-ms-version": "2021-08-06",
    "x-ms-client-request-id": randomUUID(),
    "content-length": String(opts.body?.length ?? 0),
    ...(method === "PUT" && !query.includes("comp=") && !query.includes("restype=") ? { "x-ms-blob-type": "BlockBlob" } : {}),
  };
  if (opts.sign !== false) headers["authorization"] = signRequest(gw.account, opts.key ?? gw.key, { method, path, query, headers });
  Object.assign(headers, opts.headers ?? {});
  const send = (): Promise<Answer> => new Promise((resolve, reject) => {
    const req = https.request({ host: "127.0.0.1", port: gw.tg.port("https"), servername: "localhost", ca: gw.tg.caPem, method, path: rawPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, code: String(res.headers["x-ms-error-code"] ?? ""), body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(opts.body);
  });
  return { send, headers };
}

test("refusals: unsigned, wrong key, other account, stale date, replay, bad names, traversal, quota", async (t) => {
  const gw = await startBlobGateway({ quota_bytes: 1024 * 1024 });
  t.after(() => gw.stop());
  const base = `/blob/${gw.account}`;
  assert.equal((await call(gw, "PUT", `${base}/files?restype=container`).send()).status, 201);

  // 1. Unsigned → 401; wrong key → 403; signed for another account name → 403; another account path → 404.
  assert.deepEqual(await call(gw, "GET", `${base}/?comp=list`, { sign: false }).send().then((a) => [a.status, a.code]), [401, "NoAuthenticationInformation"]);
  assert.deepEqual(await call(gw, "GET", `${base}/?comp=list`, { key: randomBytes(64).toString("base64") }).send().then((a) => [a.status, a.code]), [403, "AuthenticationFailed"]);
  assert.equal((await call(gw, "GET", `/blob/otheraccount/?comp=list`).send()).status, 404);
  // A body altered after signing (a different length) no longer matches.
  const altered = call(gw, "PUT", `${base}/files/a.txt`, { body: Buffer.from("abc") });
  altered.headers["content-length"] = "4";
  const alteredReq = https.request({ host: "127.0.0.1", port: gw.tg.port("https"), servername: "localhost", ca: gw.tg.caPem, method: "PUT", path: `${base}/files/a.txt`, headers: altered.headers });
  const alteredStatus = await new Promise<number>((resolve, reject) => {
    alteredReq.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    alteredReq.on("error", reject);
    alteredReq.end("abcd");
  });
  assert.equal(alteredStatus, 403);

  // 2. A date outside the 15-minute window, and the same signed request twice.
  assert.equal((await call(gw, "GET", `${base}/?comp=list`, { date: new Date(Date.now() - 3600_000) }).send()).status, 403);
  const once = call(gw, "PUT", `${base}/files/r.txt`, { body: Buffer.from("first") });
  assert.equal((await once.send()).status, 201);
  const replay = await once.send();
  assert.deepEqual([replay.status, replay.code], [403, "AuthenticationFailed"]);
  assert.match(replay.body, /already used/);

  // 3. Names: bad container names, traversal-looking blob names (raw, so no client normalises them away).
  assert.equal((await call(gw, "PUT", `${base}/Bad_Name?restype=container`).send()).code, "InvalidResourceName");
  assert.equal((await call(gw, "PUT", `${base}/a--b?restype=container`).send()).code, "InvalidResourceName");
  for (const name of ["..%2F..%2Fetc%2Fpasswd", "x/../../y", "%2E%2E/secret", "a%5Cb", "a%00b"]) {
    const a = await call(gw, "PUT", `${base}/files/${name}`, { body: Buffer.from("x") }).send();
    assert.deepEqual([a.status, a.code], [400, "InvalidResourceName"], name);
  }
  assert.equal((await call(gw, "GET", `${base}/nope/x.txt`).send()).code, "ContainerNotFound");
  assert.equal((await call(gw, "PUT", `${base}/files/r.txt?comp=lease`).send()).status, 400);

  // 4. Quota (1 MiB): a declared length that cannot fit is refused with 507 before a byte is stored.
  const tooBig = await call(gw, "PUT", `${base}/files/big.bin`, { body: randomBytes(1024 * 1024 + 1) }).send();
  assert.deepEqual([tooBig.status, tooBig.code], [507, "InsufficientStorage"]);
  assert.match(tooBig.body, /quota_bytes/);
  assert.equal((await call(gw, "PUT", `${base}/files/fits.bin`, { body: randomBytes(512 * 1024) }).send()).status, 201);
  assert.equal((await call(gw, "PUT", `${base}/files/fits2.bin`, { body: randomBytes(600 * 1024) }).send()).status, 507);
  // Deleting frees the space again.
  assert.equal((await call(gw, "DELETE", `${base}/files/fits.bin`).send()).status, 202);
  assert.equal((await call(gw, "PUT", `${base}/files/fits2.bin`, { body: randomBytes(600 * 1024) }).send()).status, 201);
  assert.ok(gw.plugin().store!.usedBytes() <= 1024 * 1024);
});

test("quota while uploads with deleteAfterUpload are pending: 503 with Retry-After (space will come back)", async (t) => {
  // The cloud endpoint is a closed port: uploads stay pending.
  const gw = await startBlobGateway(
    { quota_bytes: 1024 * 1024, upload: { enabled: true, delete_after_upload: true, containers: { files: { target: "%c" } }, retry_min_ms: 1000, retry_max_ms: 1000, timeout_ms: 500 } },
    { cloudConnectionString: "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=AAAA;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1" },
  );
  t.after(() => gw.stop());
  const base = `/blob/${gw.account}`;
  assert.equal((await call(gw, "PUT", `${base}/files?restype=container`).send()).status, 201);
  assert.equal((await call(gw, "PUT", `${base}/files/a.bin`, { body: randomBytes(900 * 1024) }).send()).status, 201);
  const full = await call(gw, "PUT", `${base}/files/b.bin`, { body: randomBytes(200 * 1024) }).send();
  assert.deepEqual([full.status, full.code], [503, "ServerBusy"]);
});
