import { test } from "node:test";
import assert from "node:assert/strict";
import { blobConfigSchema, blobNameProblem, containerNameProblem, expandTarget, parseConnectionString, parseRange, parseTime, redact } from "../../../plugins/blob/index.js";

test("container names follow Azure's rules", () => {
  for (const ok of ["abc", "a-b-c", "a1", "x".repeat(63)].filter((n) => n.length >= 3)) assert.equal(containerNameProblem(ok), undefined, ok);
  for (const bad of ["ab", "Abc", "a--b", "-ab", "ab-", "a_b", "x".repeat(64), "$root"]) assert.ok(containerNameProblem(bad), bad);
});

test("blob names: traversal segments, backslashes and control characters are refused", () => {
  for (const ok of ["a", "dir/x.bin", "a..b", ".hidden", "x".repeat(1024)]) assert.equal(blobNameProblem(ok), undefined, ok);
  for (const bad of ["", "..", "../x", "a/../b", "a/./b", "a\\b", "a\u0000b", "x".repeat(1025)]) assert.ok(blobNameProblem(bad), JSON.stringify(bad));
});

test("target templates: %h %d %m %c, lower-cased into a valid container name", () => {
  assert.equal(expandTarget("%h-%d-%c", { hub: "MyHub", device: "GW_1", container: "logs" }), "myhub-gw-1-logs");
  assert.equal(expandTarget("%d-%m-%c", { hub: "h", device: "d", container: "c1" }), "d-c1");
});

test("ranges: a-b, a-, -n, out of range", () => {
  assert.deepEqual(parseRange("bytes=0-9", 100), [0, 9]);
  assert.deepEqual(parseRange("bytes=90-", 100), [90, 99]);
  assert.deepEqual(parseRange("bytes=-10", 100), [90, 99]);
  assert.deepEqual(parseRange("bytes=50-1000", 100), [50, 99]);
  assert.equal(parseRange("bytes=100-", 100), "unsatisfiable");
  assert.equal(parseRange(undefined, 100), undefined);
});

test("connection strings: explicit BlobEndpoint, or protocol + suffix; the key is never in the error", () => {
  const a = parseConnectionString("DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/dev/;");
  assert.equal(a.endpoint.href, "http://127.0.0.1:10000/dev");
  const b = parseConnectionString("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net");
  assert.equal(b.endpoint.host, "acct.blob.core.windows.net");
  assert.throws(() => parseConnectionString("AccountKey=c2VjcmV0"), (e: Error) => /AccountName/.test(e.message) && !e.message.includes("c2VjcmV0"));
});

test("config: defaults are valid; upload.enabled needs a connection string file; unknown keys refused", () => {
  const d = blobConfigSchema.parse({});
  assert.equal(d.path_prefix, "/blob");
  assert.equal(d.upload.enabled, false);
  assert.equal(blobConfigSchema.safeParse({ upload: { enabled: true } }).success, false);
  assert.equal(blobConfigSchema.safeParse({ acount_name: "x" }).success, false);
});

test("times: unix seconds, ISO, relative", () => {
  const now = 1_000_000_000_000;
  assert.equal(parseTime(10), 10_000);
  assert.equal(parseTime("15m", now), now - 900_000);
  assert.equal(parseTime("2024-01-01T00:00:00Z"), Date.parse("2024-01-01T00:00:00Z"));
  assert.equal(parseTime("garbage"), undefined);
});

test("redact blanks secret-looking values and keeps file paths", () => {
  assert.deepEqual(redact({ service: { owner_key_file: "/k", owner_key: "s" }, a: [{ password: "p", token: "t" }] }), { service: { owner_key_file: "/k", owner_key: "[redacted]" }, a: [{ password: "[redacted]", token: "[redacted]" }] });
});
