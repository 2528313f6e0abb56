import https from "node:https";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { IncomingMessage } from "node:http";
import type { StrataConfig } from "../config/schema.js";
import { readSecret } from "../config/secret.js";
import { StrataError } from "../errors.js";
import { signSas } from "../identity/sas.js";
import { resolveConfig } from "./context.js";
import type { Output } from "./output.js";

export const IMAGES_USAGE = `strata images prefetch <name[:tag]|name@sha256:…>… [--platform os/arch]… [--user NAME --password-file FILE]
  Pulls images through this gateway's own front (https://<listen.address>:<listen.https>/v2/), so every
  registry cache on the way up (this gateway's, its parents') keeps them: a rollout staged ahead of time.
  Authenticates as this gateway ([identity], a SAS token) unless --user is given (a cache's pull user).
  (common: --config <file>)`;

/** What a pull asks for (the cache negotiates among these). */
const MANIFEST_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
];
// OCI distribution spec: name components separated by "/" (a registry host with a port may lead, for prefix routing).
const NAME = /^(?:[A-Za-z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface PrefetchOptions {
  /** The front to pull through: `https://host:port`. */
  url: string;
  ca: string;
  servername?: string;
  credentials?: () => { username: string; password: string };
  /** Only these platforms of an index (`linux/arm64`); all when empty. */
  platforms?: readonly string[];
  /** One line per step; a blob that takes long also reports every `progressEveryMs` (default 2 s). */
  progress: (line: string) => void;
  progressEveryMs?: number;
}

interface Descriptor {
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

interface ManifestJson {
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

/** `name[:tag]` or `name@sha256:…`; a registry host in front stays part of the name (the cache routes by prefix). */
export function parseRef(ref: string): { name: string; reference: string } {
  const at = ref.indexOf("@");
  let parsed: { name: string; reference: string };
  if (at > 0) parsed = { name: ref.slice(0, at), reference: ref.slice(at + 1) };
  else {
    const slash = ref.lastIndexOf("/");
    const colon = ref.lastIndexOf(":");
    parsed = colon > slash ? { name: ref.slice(0, colon), reference: ref.slice(colon + 1) } : { name: ref, reference: "latest" };
  }
  const refOk = at > 0 ? DIGEST.test(parsed.reference) : TAG.test(parsed.reference);
  if (!NAME.test(parsed.name) || !refOk) {
    throw new StrataError("STRATA_REGISTRY_PREFETCH_FAILED", `"${ref}" is not an image reference (name[:tag] or name@sha256:<64 hex>, lower-case name)`);
  }
  return parsed;
}

/**
 * Pulls each image through a gateway's front: its manifest (each platform's, for an index), config and layers.
 * The bytes are discarded here; the caches on the way verify and keep them. Every ref is tried; resolves with
 * the bytes pulled and the refs that failed, each with its reason.
 */
export async function prefetch(refs: readonly string[], o: PrefetchOptions): Promise<{ bytes: number; failed: { ref: string; reason: string }[] }> {
  const agent = new https.Agent({ keepAlive: true, ca: o.ca, ...(o.servername ? { servername: o.servername } : {}) });
  let bytes = 0;
  const failed: { ref: string; reason: string }[] = [];
  try {
    for (const ref of refs) {
      try {
        bytes += await prefetchOne(agent, o, ref);
      } catch (err) {
        const reason = (err as Error).message;
        failed.push({ ref, reason });
        o.progress(`${ref}: FAILED: ${reason}`);
      }
    }
  } finally {
    agent.destroy();
  }
  return { bytes, failed };
}

async function prefetchOne(agent: https.Agent, o: PrefetchOptions, ref: string): Promise<number> {
  const { name, reference } = parseRef(ref);
  const top = await getJson(agent, o, `/v2/${name}/manifests/${reference}`);
  const manifests: ManifestJson[] = [];
  if (Array.isArray(top.manifests)) {
    for (const m of top.manifests) {
      const plat = m.platform ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ""}` : "unknown";
      if (o.platforms?.length && !o.platforms.includes(plat)) continue;
      manifests.push(await getJson(agent, o, `/v2/${name}/manifests/${m.digest}`));
    }
    if (manifests.length === 0) throw new Error(`no platform of the index matches --platform ${o.platforms?.join(", ")}`);
  } else {
    manifests.push(top);
  }
  const blobs = new Map<string, number>();
  for (const m of manifests) for (const d of [m.config, ...(m.layers ?? [])]) if (d?.digest) blobs.set(d.digest, d.size ?? 0);
  const want = [...blobs.values()].reduce((a, b) => a + b, 0);
  o.progress(`${ref}: ${manifests.length} manifest(s), ${blobs.size} blob(s), ${mib(want)}`);
  let done = 0;
  let i = 0;
  for (const [digest] of blobs) {
    i++;
    const label = `[${i}/${blobs.size}] ${digest.slice(0, 19)}`;
    const n = await drain(agent, o, `/v2/${name}/blobs/${digest}`, (got) => o.progress(`  ${bar(want ? (done + got) / want : 1)} ${label} ${mib(got)} so far`));
    done += n;
    o.progress(`  ${bar(want ? done / want : 1)} ${label} ${mib(n)}`);
  }
  o.progress(`${ref}: done, ${mib(done)}`);
  return done;
}

function request(agent: https.Agent, o: PrefetchOptions, path: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  const creds = o.credentials?.();
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, o.url), {
      agent,
      headers: { ...headers, ...(creds ? { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}` } : {}) },
    }, resolve);
    req.on("error", (err) => reject(new Error(`${o.url} could not be reached: ${err.message}`)));
    req.end();
  });
}

async function getJson(agent: https.Agent, o: PrefetchOptions, path: string): Promise<ManifestJson> {
  const res = await request(agent, o, path, { accept: MANIFEST_TYPES.join(", ") });
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  const text = Buffer.concat(chunks).toString("utf8");
  if (res.statusCode !== 200) throw new Error(`GET ${path} answered ${res.statusCode}${registryError(text)}`);
  return JSON.parse(text) as ManifestJson;
}

async function drain(agent: https.Agent, o: PrefetchOptions, path: string, report: (bytes: number) => void): Promise<number> {
  const res = await request(agent, o, path);
  if (res.statusCode !== 200) {
    const chunks: Buffer[] = [];
    for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
    throw new Error(`GET ${path} answered ${res.statusCode}${registryError(Buffer.concat(chunks).toString("utf8"))}`);
  }
  let n = 0;
  let last = Date.now();
  const every = o.progressEveryMs ?? 2000;
  try {
    for await (const c of res as AsyncIterable<Buffer>) {
      n += c.length;
      if (Date.now() - last >= every) {
        last = Date.now();
        report(n);
      }
    }
  } catch (err) {
    throw new Error(`GET ${path} was cut short after ${n} bytes (${(err as Error).message})`);
  }
  if (!res.complete) throw new Error(`GET ${path} was cut short after ${n} bytes`);
  return n;
}

/** `: MANIFEST_UNKNOWN …` from an OCI error body, when there is one. */
function registryError(text: string): string {
  try {
    const e = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors?.[0];
    if (e) return `: ${e.code ?? ""} ${e.message ?? ""}`.trimEnd();
  } catch {
    // not JSON
  }
  return text ? `: ${text.slice(0, 200)}` : "";
}

function bar(fraction: number): string {
  const f = Math.min(1, fraction);
  const width = 24;
  const full = Math.round(f * width);
  return `[${"#".repeat(full)}${".".repeat(width - full)}] ${(f * 100).toFixed(0).padStart(3)}%`;
}

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** This gateway's pull credentials: its device id and a SAS token signed with its identity key. */
function gatewayCredentials(config: StrataConfig): () => { username: string; password: string } {
  const identity = config.identity;
  if (!identity) throw new StrataError("STRATA_REGISTRY_PREFETCH_FAILED", "this gateway has no [identity] to pull as; pass --user and --password-file (a pull user of the cache)");
  return () => {
    const key = readSecret(identity.key_file, "identity.key_file");
    return { username: config.device_id, password: signSas({ resource: `${config.hub}/devices/${config.device_id}`, key, expirySecs: Math.floor(Date.now() / 1000) + 3600 }) };
  };
}

/** `strata images prefetch …`: exit 0 when every ref was pulled, 1 when one failed (each named), 2 on usage. */
export async function imagesCommand(args: readonly string[], out: Output): Promise<number> {
  const [verb, ...rest] = args;
  if (verb !== "prefetch") {
    out.error(`usage: ${IMAGES_USAGE}`);
    return 2;
  }
  const refs: string[] = [];
  const platforms: string[] = [];
  let user: string | undefined;
  let passwordFile: string | undefined;
  let configFile: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === "--platform") platforms.push(rest[++i] ?? "");
    else if (a === "--user") user = rest[++i];
    else if (a === "--password-file") passwordFile = rest[++i];
    else if (a === "--config") configFile = rest[++i];
    else if (a.startsWith("--")) {
      out.error(`unknown option ${a}\nusage: ${IMAGES_USAGE}`);
      return 2;
    } else refs.push(a);
  }
  if (refs.length === 0 || (user === undefined) !== (passwordFile === undefined)) {
    out.error(`usage: ${IMAGES_USAGE}`);
    return 2;
  }
  const { config } = await resolveConfig({ ...(configFile ? { config: configFile } : {}) }, { prepareEmbedded: false });
  const password = passwordFile ? readSecret(passwordFile, "--password-file") : undefined;
  const address = config.listen.address === "0.0.0.0" ? "127.0.0.1" : config.listen.address === "::" ? "::1" : config.listen.address;
  const url = `https://${isIP(address) === 6 ? `[${address}]` : address}:${config.listen.https}`;
  const credentials = user && password ? () => ({ username: user, password }) : gatewayCredentials(config);
  let ca: string;
  try {
    ca = readFileSync(config.tls.ca_file, "utf8");
  } catch (err) {
    throw new StrataError("STRATA_REGISTRY_PREFETCH_FAILED", `[tls] ca_file ${config.tls.ca_file} cannot be read (${(err as NodeJS.ErrnoException).code}): the CA to trust this gateway's front with; is this the gateway's config?`);
  }
  const { bytes, failed } = await prefetch(refs, {
    url,
    ca,
    ...(isIP(config.hostname) ? {} : { servername: config.hostname }),
    credentials,
    platforms,
    progress: (line) => out.info(line),
  });
  if (failed.length > 0) {
    out.error(`prefetch through ${url} failed for ${failed.length} of ${refs.length} image(s):\n${failed.map((f) => `  ${f.ref}: ${f.reason}`).join("\n")}`);
    return 1;
  }
  out.info(`prefetched ${refs.length} image(s), ${mib(bytes)}, through ${url}`);
  return 0;
}
