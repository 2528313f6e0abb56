import { test } from "node:test";
import assert from "node:assert/strict";
import { acceptedManifestTypes, MANIFEST_TYPES, parseRange, parseRegistryPath, registryCacheConfigSchema } from "../../../plugins/registry-cache/index.js";
import { parseRef } from "../../../core/cli/images.js";
import { resolveDestination } from "../../../plugins/https-front/index.js";
import type { StrataConfig } from "../../../core/index.js";

test("Accept: the set of manifest types admitted is the tag's cache key; q=0 excludes; nothing known means all", () => {
  assert.deepEqual(acceptedManifestTypes("application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json;q=0.5"),
    ["application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.index.v1+json"]);
  assert.deepEqual(acceptedManifestTypes("application/vnd.oci.image.index.v1+json;q=0, application/vnd.oci.image.manifest.v1+json"), ["application/vnd.oci.image.manifest.v1+json"]);
  assert.deepEqual(acceptedManifestTypes(undefined), [...MANIFEST_TYPES].sort());
  assert.deepEqual(acceptedManifestTypes("*/*"), [...MANIFEST_TYPES].sort());
});

test("paths: nested names, tags and digests; anything else is not served", () => {
  assert.deepEqual(parseRegistryPath("/v2/"), { kind: "base" });
  assert.deepEqual(parseRegistryPath("/v2/docker.io/library/alpine/manifests/3.20?ns=docker.io"), { kind: "manifest", name: "docker.io/library/alpine", reference: "3.20" });
  const d = `sha256:${"a".repeat(64)}`;
  assert.deepEqual(parseRegistryPath(`/v2/a/b/blobs/${d}`), { kind: "blob", name: "a/b", digest: d });
  assert.equal(parseRegistryPath("/v2/a/blobs/sha256:short").kind, "other");
  assert.equal(parseRegistryPath("/v2/A/manifests/x").kind, "other");
  assert.equal(parseRegistryPath("/v2/a/blobs/uploads/").kind, "other");
});

test("Range: single ranges, suffixes, open ends, unsatisfiable", () => {
  assert.deepEqual(parseRange("bytes=0-9", 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange("bytes=90-", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-5", 100), { start: 95, end: 99 });
  assert.deepEqual(parseRange("bytes=50-500", 100), { start: 50, end: 99 });
  assert.equal(parseRange("bytes=100-", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=1-2,4-5", 100), undefined);
  assert.equal(parseRange(undefined, 100), undefined);
});

test("prefetch refs: tag, digest, default latest, registry host with a port", () => {
  assert.deepEqual(parseRef("plant/app:v1"), { name: "plant/app", reference: "v1" });
  assert.deepEqual(parseRef("plant/app"), { name: "plant/app", reference: "latest" });
  assert.deepEqual(parseRef(`plant/app@sha256:${"b".repeat(64)}`), { name: "plant/app", reference: `sha256:${"b".repeat(64)}` });
  assert.deepEqual(parseRef("host:5000/plant/app"), { name: "host:5000/plant/app", reference: "latest" });
});

test("config: one default upstream at most; username and password_file together", () => {
  const two = registryCacheConfigSchema.safeParse({ upstreams: { a: { url: "https://a.example" }, b: { url: "https://b.example" } } });
  assert.equal(two.success, false);
  const half = registryCacheConfigSchema.safeParse({ upstreams: { a: { url: "https://a.example", username: "u" } } });
  assert.equal(half.success, false);
  assert.equal(registryCacheConfigSchema.safeParse({ upstreams: { a: { url: "ftp://a.example" } } }).success, false);
  assert.equal(registryCacheConfigSchema.safeParse({ upstreams: { hub: { url: "https://registry-1.docker.io", prefix: "docker.io/" }, own: { url: "https://r.example" } } }).success, true);
});

test("https-front: auto leaves /v2 to a local cache section, else forwards to the parent, and never without one", () => {
  const child = { parent: { hostname: "p" }, plugins: {} } as unknown as StrataConfig;
  const childWithCache = { parent: { hostname: "p" }, plugins: { "registry-cache": {} } } as unknown as StrataConfig;
  const childCacheOff = { parent: { hostname: "p" }, plugins: { "registry-cache": { enabled: false } } } as unknown as StrataConfig;
  const root = { plugins: {} } as unknown as StrataConfig;
  assert.equal(resolveDestination("auto", "registry-cache", child), "parent");
  assert.equal(resolveDestination("auto", "registry-cache", childWithCache), "local");
  assert.equal(resolveDestination("auto", "registry-cache", childCacheOff), "parent");
  assert.equal(resolveDestination("auto", "registry-cache", root), "off");
  assert.equal(resolveDestination("parent", "registry-cache", root), "off");
});
