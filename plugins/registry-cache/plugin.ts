import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import {
  inject, injectable, PluginError, readSecret, signSas, TOKENS,
  type HttpFront, type Identities, type Logger, type Metrics, type Plugin, type StrataConfig,
} from "../../core/index.js";
import { RegistryCache, type RoutedUpstream } from "./cache.js";
import type { RegistryCacheConfig } from "./config.js";
import { DiskStore } from "./disk-store.js";
import { registryCacheMetrics } from "./metrics.js";
import { PullAuth } from "./pull-auth.js";
import { UpstreamClient, type BasicCredentials } from "./upstream/client.js";

/** The plugin's data folder: `<data_dir>/plugins/registry-cache`. */
export function registryCacheDataDir(config: StrataConfig): string {
  return join(config.data_dir, "plugins", "registry-cache");
}

/** A gateway's own pull credentials: its device id and a SAS token signed with its identity key (refreshed hourly). */
export function gatewayCredentials(config: StrataConfig): () => BasicCredentials {
  let cached: { creds: BasicCredentials; until: number } | undefined;
  return () => {
    const now = Math.floor(Date.now() / 1000);
    if (cached && cached.until > now + 300) return cached.creds;
    if (!config.identity) {
      throw new PluginError("registry-cache", "STRATA_REGISTRY_NO_IDENTITY", "gateway_auth needs this gateway's [identity] key_file; set it or configure username/password_file instead");
    }
    const key = readSecret(config.identity.key_file, "identity.key_file");
    const se = now + 3600;
    const password = signSas({ resource: `${config.hub}/devices/${config.device_id}`, key, expirySecs: se });
    cached = { creds: { username: config.device_id, password }, until: se };
    return cached.creds;
  };
}

/** Builds the routed upstreams from config (plus the parent's front on a child with no default upstream). */
export function buildUpstreams(cfg: RegistryCacheConfig, config: StrataConfig, logger: Logger): RoutedUpstream[] {
  const out: RoutedUpstream[] = [];
  for (const [name, u] of Object.entries(cfg.upstreams)) {
    let credentials: (() => BasicCredentials) | undefined;
    if (u.gateway_auth) credentials = gatewayCredentials(config);
    else if (u.username && u.password_file) {
      const password = readSecret(u.password_file, `plugins.registry-cache.upstreams.${name}.password_file`);
      const username = u.username;
      credentials = () => ({ username, password });
    }
    if (u.url.startsWith("http:")) logger.warn({ upstream: name, url: u.url }, "registry upstream over plain http");
    out.push({
      name,
      prefix: u.prefix,
      stripPrefix: u.strip_prefix,
      client: new UpstreamClient({
        name,
        url: u.url,
        timeoutMs: cfg.upstream_timeout_ms,
        logger,
        ...(credentials ? { credentials } : {}),
        ...(u.ca_file ? { ca: readFileSync(u.ca_file, "utf8") } : {}),
        ...(u.servername ? { servername: u.servername } : {}),
      }),
    });
  }
  const parent = config.parent;
  if (parent && cfg.parent_upstream && !out.some((u) => u.prefix === "")) {
    const host = parent.address ?? parent.hostname;
    out.push({
      name: "parent",
      prefix: "",
      stripPrefix: false,
      client: new UpstreamClient({
        name: "parent",
        url: `https://${isIP(host) === 6 ? `[${host}]` : host}:${parent.https_port}`,
        ca: readFileSync(config.tls.ca_file, "utf8"),
        ...(isIP(parent.hostname) ? {} : { servername: parent.hostname }),
        credentials: gatewayCredentials(config),
        timeoutMs: cfg.upstream_timeout_ms,
        logger,
      }),
    });
  }
  return out;
}

/** Mounts the pull-through cache at `/v2/` on core's HTTPS listener. */
@injectable()
export class RegistryCachePlugin implements Plugin {
  private cache: RegistryCache | undefined;
  private upstreams: RoutedUpstream[] = [];
  private unmount: (() => void) | undefined;

  constructor(
    @inject(TOKENS.PluginConfig) private readonly cfg: RegistryCacheConfig,
    @inject(TOKENS.Config) private readonly config: StrataConfig,
    @inject(TOKENS.HttpFront) private readonly front: HttpFront,
    @inject(TOKENS.Identities) private readonly identities: Identities,
    @inject(TOKENS.Logger) private readonly log: Logger,
    /** Optional: hits, misses and bytes on /metrics when the gateway has a registry. */
    @inject(TOKENS.Metrics, { isOptional: true }) private readonly metrics?: Metrics,
  ) {}

  /** The running cache (tests and the bench read its stats). */
  get running(): RegistryCache | undefined {
    return this.cache;
  }

  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const store = new DiskStore(registryCacheDataDir(this.config));
    store.init();
    const users = this.cfg.pull_users.map((u, i) => ({ username: u.username, password: readSecret(u.password_file, `plugins.registry-cache.pull_users[${i}].password_file`) }));
    this.upstreams = buildUpstreams(this.cfg, this.config, this.log);
    signal.throwIfAborted();
    this.cache = new RegistryCache({
      store,
      upstreams: this.upstreams,
      auth: new PullAuth(users, this.identities, this.cfg.anonymous),
      maxManifestBytes: this.cfg.max_manifest_bytes,
      quotaBytes: this.cfg.quota_bytes,
      logger: this.log,
      realm: `strata ${this.config.hostname}`,
    });
    const cache = this.cache;
    registryCacheMetrics(this.metrics)(() => this.cache?.stats);
    this.unmount = this.front.mountRaw("/v2", (req, res) => cache.handle(req, res));
    this.log.info({ upstreams: this.upstreams.map((u) => ({ name: u.name, prefix: u.prefix, host: u.client.host })), anonymous: this.cfg.anonymous }, "registry cache mounted at /v2/");
  }

  async stop(): Promise<void> {
    this.unmount?.();
    this.unmount = undefined;
    await this.cache?.stop();
    this.cache = undefined;
    for (const u of this.upstreams) u.client.close();
    this.upstreams = [];
  }
}
