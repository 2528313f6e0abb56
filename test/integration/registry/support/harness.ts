import https from "node:https";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import httpsFront from "../../../../plugins/https-front/index.js";
import registryCache from "../../../../plugins/registry-cache/index.js";
import type { RegistryCachePlugin } from "../../../../plugins/registry-cache/index.js";
import { startTestGateway, type TestGateway } from "../../../support/gateway.js";
import { skopeo } from "./oci.js";

export const PULL_USER = "puller";
export const PULL_PASSWORD = "pull-secret-1";

/** A secret file (mode 0600) in a fresh temp dir. */
export function secretFile(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), "strata-secret-"));
  const file = join(dir, "secret");
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

/** A root test gateway running registry-cache with `upstreamUrl` as the default upstream and one pull user. */
export async function startCacheGateway(upstreamUrl: string, extra: Record<string, unknown> = {}, opts: { address?: string } = {}): Promise<TestGateway> {
  return startTestGateway({
    ...(opts.address ? { address: opts.address } : {}),
    extraPlugins: [{
      module: registryCache,
      settings: {
        upstreams: { origin: { url: upstreamUrl } },
        pull_users: [{ username: PULL_USER, password_file: secretFile(PULL_PASSWORD) }],
        upstream_timeout_ms: 5000,
        ...extra,
      },
    }],
  });
}

/** A child gateway under `parent` running only the https-front plugin. */
export async function startFrontChild(parent: TestGateway, id: string, frontSettings: Record<string, unknown> = {}): Promise<TestGateway> {
  const { key } = await parent.addDevice(id, { edge: true });
  return startTestGateway({
    deviceId: id,
    extraPlugins: [{ module: httpsFront, settings: frontSettings }],
    config: {
      service: undefined,
      identity: { key_file: secretFile(key) },
      parent: { hostname: "localhost", address: "127.0.0.1", https_port: parent.port("https"), amqp_port: 9, transport: "amqps" },
    },
  });
}

/** The running cache inside a test gateway (its stats); reads the plugin host's slot, test-only. */
export function cacheOf(tg: TestGateway): NonNullable<RegistryCachePlugin["running"]> {
  const host = tg.gw.plugins as unknown as { slots: Map<string, { instance?: RegistryCachePlugin }> };
  const slot = host.slots.get("registry-cache");
  const running = slot?.instance?.running;
  if (!running) throw new Error("registry-cache is not running in this gateway");
  return running;
}

/** A folder with the dev CA as ca.crt, for skopeo's --src-cert-dir. */
export function certDir(caPem: string): string {
  const dir = mkdtempSync(join(tmpdir(), "strata-certs-"));
  writeFileSync(join(dir, "ca.crt"), caPem);
  return dir;
}

/** `skopeo copy --all docker://host/repo:ref oci:DIR:tag` through a gateway front; returns DIR. */
export async function pullThrough(hostPort: string, caPem: string, repoRef: string, creds = `${PULL_USER}:${PULL_PASSWORD}`): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), "strata-pull-"));
  mkdirSync(out, { recursive: true });
  await skopeo(["copy", "--all", "--preserve-digests", "--src-cert-dir", certDir(caPem), ...(creds ? ["--src-creds", creds] : ["--src-no-creds"]), `docker://${hostPort}/${repoRef}`, `oci:${out}:pulled`]);
  return out;
}

export interface Fetched {
  status: number;
  headers: import("node:http").IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTPS request to a gateway front, trusting the dev CA. */
export function fetchFront(port: number, caPem: string, path: string, o: { method?: string; headers?: Record<string, string>; auth?: string | null; host?: string } = {}): Promise<Fetched> {
  const auth = o.auth === null ? undefined : o.auth ?? `Basic ${Buffer.from(`${PULL_USER}:${PULL_PASSWORD}`).toString("base64")}`;
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: o.host ?? "127.0.0.1",
      port,
      path,
      method: o.method ?? "GET",
      ca: caPem,
      agent: false,
      headers: { ...o.headers, ...(auth ? { authorization: auth } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}
