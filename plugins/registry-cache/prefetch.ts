import https from "node:https";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { IncomingMessage } from "node:http";
import { readSecret, StrataError, type PluginCommand, type StrataConfig } from "../../core/index.js";
import { MANIFEST_TYPES } from "./media-types.js";
import { gatewayCredentials } from "./plugin.js";
import type { BasicCredentials } from "./upstream/client.js";

export interface PrefetchOptions {
  /** The front to pull through: `https://host:port`. */
  url: string;
  ca: string;
  servername?: string;
  credentials?: () => BasicCredentials;
  /** Only these platforms of an index (`linux/arm64`); all when empty. */
  platforms?: readonly string[];
  out: NodeJS.WritableStream;
}

interface Descriptor {
  digest: string;
  size?: number;
  mediaType?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/**
 * Pulls images through a gateway's front, so every cache on the way (this gateway's, its parents') ends
 * up holding them: manifests (each platform of an index), config and layers. The bytes are discarded here;
 * the caches verify and keep them. Resolves with the bytes pulled.
 */
export async function prefetch(refs: readonly string[], o: PrefetchOptions): Promise<number> {
  const agent = new https.Agent({ keepAlive: true, ca: o.ca, ...(o.servername ? { servername: o.servername } : {}) });
  let total = 0;
  try {
    for (const ref of refs) {
      const { name, reference } = parseRef(ref);
      const top = await getJson(agent, o, `/v2/${name}/manifests/${reference}`);
      const manifests: { label: string; body: { config?: Descriptor; layers?: Descriptor[] } }[] = [];
      if (Array.isArray(top.manifests)) {
        for (const m of top.manifests as Descriptor[]) {
          const plat = m.platform ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ""}` : "unknown";
          if (o.platforms?.length && !o.platforms.includes(plat)) continue;
          manifests.push({ label: plat, body: await getJson(agent, o, `/v2/${name}/manifests/${m.digest}`) });
        }
      } else {
        manifests.push({ label: "image", body: top });
      }
      const blobs = new Map<string, number>();
      for (const m of manifests) for (const d of [m.body.config, ...(m.body.layers ?? [])]) if (d?.digest) blobs.set(d.digest, d.size ?? 0);
      const want = [...blobs.values()].reduce((a, b) => a + b, 0);
      let done = 0;
      o.out.write(`${ref}: ${manifests.length} manifest(s), ${blobs.size} blob(s), ${mib(want)}\n`);
      let i = 0;
      for (const [digest] of blobs) {
        i++;
        const n = await drain(agent, o, `/v2/${name}/blobs/${digest}`);
        done += n;
        o.out.write(`  ${bar(want ? done / want : 1)} [${i}/${blobs.size}] ${digest.slice(0, 19)} ${mib(n)}\n`);
      }
      total += done;
      o.out.write(`${ref}: done, ${mib(done)}\n`);
    }
  } finally {
    agent.destroy();
  }
  return total;
}

/** `name[:tag]` or `name@sha256:…`, with an optional registry host in front kept as part of the name (prefix routing). */
export function parseRef(ref: string): { name: string; reference: string } {
  const at = ref.indexOf("@");
  if (at > 0) return { name: ref.slice(0, at), reference: ref.slice(at + 1) };
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (colon > slash) return { name: ref.slice(0, colon), reference: ref.slice(colon + 1) };
  return { name: ref, reference: "latest" };
}

function request(agent: https.Agent, o: PrefetchOptions, path: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  const url = new URL(path, o.url);
  const creds = o.credentials?.();
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      agent,
      headers: { ...headers, ...(creds ? { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}` } : {}) },
    }, resolve);
    req.on("error", reject);
    req.end();
  });
}

interface ManifestJson {
  manifests?: unknown;
  config?: Descriptor;
  layers?: Descriptor[];
}

async function getJson(agent: https.Agent, o: PrefetchOptions, path: string): Promise<ManifestJson> {
  const res = await request(agent, o, path, { accept: MANIFEST_TYPES.join(", ") });
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  const text = Buffer.concat(chunks).toString("utf8");
  if (res.statusCode !== 200) {
    throw new StrataError("STRATA_REGISTRY_PREFETCH_FAILED", `GET ${path} answered ${res.statusCode}: ${text.slice(0, 300)}`);
  }
  return JSON.parse(text) as ManifestJson;
}

async function drain(agent: https.Agent, o: PrefetchOptions, path: string): Promise<number> {
  const res = await request(agent, o, path);
  let n = 0;
  for await (const c of res as AsyncIterable<Buffer>) n += c.length;
  if (res.statusCode !== 200 || !res.complete) {
    throw new StrataError("STRATA_REGISTRY_PREFETCH_FAILED", `GET ${path} answered ${res.statusCode}${res.complete ? "" : " and was cut short"}`);
  }
  return n;
}

function bar(fraction: number): string {
  const width = 24;
  const full = Math.round(Math.min(1, fraction) * width);
  return `[${"#".repeat(full)}${".".repeat(width - full)}] ${(Math.min(1, fraction) * 100).toFixed(0).padStart(3)}%`;
}

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** `strata images prefetch <ref>… [--platform os/arch]… [--user U --password-file F]`. */
export const prefetchCommand: PluginCommand = {
  name: "images prefetch",
  summary: "pull images through this gateway's front so every cache on the way holds them",
  usage:
    "strata images prefetch <name[:tag]|name@digest>… [--platform os/arch]… [--user NAME --password-file FILE]\n" +
    "Pulls through https://<listen.address>:<listen.https>/v2/ as this gateway (its [identity]) unless --user is given.",
  async run(args, ctx) {
    const config = ctx.config as StrataConfig;
    const refs: string[] = [];
    const platforms: string[] = [];
    let user: string | undefined;
    let passwordFile: string | undefined;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === "--platform") platforms.push(args[++i] ?? "");
      else if (a === "--user") user = args[++i];
      else if (a === "--password-file") passwordFile = args[++i];
      else refs.push(a);
    }
    if (refs.length === 0 || (user === undefined) !== (passwordFile === undefined)) {
      ctx.stderr.write(`usage: ${prefetchCommand.usage}\n`);
      return 2;
    }
    const password = passwordFile ? readSecret(passwordFile, "--password-file") : undefined;
    const address = config.listen.address === "0.0.0.0" ? "127.0.0.1" : config.listen.address;
    try {
      await prefetch(refs, {
        url: `https://${isIP(address) === 6 ? `[${address}]` : address}:${config.listen.https}`,
        ca: readFileSync(config.tls.ca_file, "utf8"),
        ...(isIP(config.hostname) ? {} : { servername: config.hostname }),
        ...(user && password ? { credentials: () => ({ username: user, password }) } : config.identity ? { credentials: gatewayCredentials(config) } : {}),
        platforms,
        out: ctx.stdout,
      });
      return 0;
    } catch (err) {
      ctx.stderr.write(`prefetch failed: ${(err as Error).message}\n`);
      return 1;
    }
  },
};
