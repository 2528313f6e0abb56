import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import {
  generateKey, inject, injectable, PluginError, readSecret, TOKENS,
  type Attachment, type HttpFront, type Hub, type Identities, type Logger, type Metrics, type Plugin, type StrataConfig,
} from "../../core/index.js";
import { CloudClient, parseConnectionString, type CloudAccount } from "./cloud.js";
import type { BlobConfig } from "./config.js";
import { LogRing } from "./log-ring.js";
import { blobMetrics } from "./metrics.js";
import { containerNameProblem, expandTarget } from "./names.js";
import { EdgeAgentMethods, type ResultSink } from "./methods.js";
import type { ModuleLogSource } from "./module-logs.js";
import { BlobServer } from "./server.js";
import { BlobStore } from "./store.js";
import { Uploader } from "./uploader.js";

/** The plugin's data folder: `<data_dir>/plugins/blob`. */
export function blobDataDir(config: StrataConfig): string {
  return join(config.data_dir, "plugins", "blob");
}

/** The local account key: the configured secret file, else `<data>/account.key` (created once, mode 0600). */
export function accountKey(cfg: BlobConfig, dataDir: string): { key: string; file: string } {
  if (cfg.account_key_file) return { key: readSecret(cfg.account_key_file, "plugins.blob.account_key_file"), file: cfg.account_key_file };
  const file = join(dataDir, "account.key");
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(64).toString("base64"), { mode: 0o600, flag: "wx" });
  }
  return { key: readSecret(file, "plugins.blob (generated account.key)"), file };
}

/**
 * `[plugins.blob]`: Blob Storage on IoT Edge in-process. Serves the Blob REST subset on the HTTPS port under
 * path_prefix (and `/<account>`), keeps blobs under the data folder, uploads mapped containers to cloud
 * storage, deletes old blobs, and answers `$edgeAgent`'s log and support-bundle methods.
 */
@injectable()
export class BlobPlugin implements Plugin {
  store: BlobStore | undefined;
  server: BlobServer | undefined;
  uploader: Uploader | undefined;
  methods: EdgeAgentMethods | undefined;
  private cloud: CloudAccount | undefined;
  private parentClient: CloudClient | undefined;
  private readonly ring = new LogRing();
  private unmounts: (() => void)[] = [];
  private attachment: Attachment | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(
    @inject(TOKENS.PluginConfig) private readonly cfg: BlobConfig,
    @inject(TOKENS.Config) private readonly config: StrataConfig,
    @inject(TOKENS.HttpFront) private readonly front: HttpFront,
    @inject(TOKENS.Hub) private readonly hub: Hub,
    @inject(TOKENS.Identities) private readonly identities: Identities,
    @inject(TOKENS.Logger) private readonly log: Logger,
    /** Optional: the upload queue on /metrics when the gateway has a registry. */
    @inject(TOKENS.Metrics, { isOptional: true }) private readonly metrics?: Metrics,
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    try {
      blobMetrics(this.metrics)(() => this.uploader?.stats);
      await this.startInner(signal);
    } catch (err) {
      await this.stop();
      if (err instanceof PluginError) throw err;
      throw new PluginError("blob", (err as { code?: string }).code?.startsWith("STRATA_") ? (err as { code: string }).code : "STRATA_BLOB_START", `could not start: ${(err as Error).message}`, { cause: err });
    }
  }

  private async startInner(signal: AbortSignal): Promise<void> {
    if (!this.cfg.local_store) {
      await this.startMethodsOnly(signal);
      return;
    }
    const dir = blobDataDir(this.config);
    const { key } = accountKey(this.cfg, dir);
    signal.throwIfAborted();
    const store = new BlobStore(dir, this.cfg.quota_bytes);
    this.store = store;
    await store.open();
    signal.throwIfAborted();
    this.server = new BlobServer({ store, account: this.cfg.account_name, key: () => key, maxClockSkewSecs: this.cfg.max_clock_skew_secs, logger: this.log });
    this.unmounts.push(this.front.mountRaw(this.cfg.path_prefix, this.server.handler(this.cfg.path_prefix)));
    if (this.cfg.serve_account_root) this.unmounts.push(this.front.mountRaw(`/${this.cfg.account_name}`, this.server.handler("")));

    if (this.cfg.upload.enabled && this.cfg.upload.connection_string_file) {
      for (const [src, m] of Object.entries(this.cfg.upload.containers)) {
        const target = expandTarget(m.target, { hub: this.config.hub, device: this.config.device_id, container: src });
        const problem = containerNameProblem(target);
        if (problem) throw new PluginError("blob", "STRATA_BLOB_TARGET_NAME", `plugins.blob.upload.containers.${src}.target "${m.target}" gives "${target}": ${problem}; change the template`);
      }
      this.cloud = parseConnectionString(readSecret(this.cfg.upload.connection_string_file, "plugins.blob.upload.connection_string_file"));
      const client = new CloudClient(this.cloud, { timeoutMs: this.cfg.upload.timeout_ms, ...(this.cfg.upload.ca_file ? { ca: readFileSync(this.cfg.upload.ca_file, "utf8") } : {}) });
      this.uploader = new Uploader(this.store, client, this.cfg.upload, { hub: this.config.hub, device: this.config.device_id }, this.log);
      await this.uploader.start();
    }
    if (this.cfg.auto_delete.enabled) {
      this.sweeper = setInterval(() => {
        this.sweeping ??= this.sweep().then(() => undefined, (err: unknown) => this.log.warn({ err }, "blob auto-delete failed")).finally(() => {
          this.sweeping = undefined;
        });
      }, this.cfg.auto_delete.sweep_interval_ms);
      this.sweeper.unref();
    }
    if (this.cfg.methods) {
      await this.attachMethods({
        put: async (container, name, body, contentType, metadata) => {
          if (!(await store.getContainer(container))) await store.createContainer(container, {});
          await store.putBlob(container, name, Readable.from([body]), { contentType }, metadata);
        },
        describe: (container, name) => `${container}/${name} in this gateway's blob store`,
        where: "local",
        cloudName: (container, name) => {
          const target = this.uploader?.targetOf(container);
          return target === undefined ? undefined : `${target}/${name}`;
        },
      });
    }
    this.log.info({ account: this.cfg.account_name, prefix: this.cfg.path_prefix, upload: this.cfg.upload.enabled, usedBytes: store.usedBytes() }, "blob store ready");
  }

  /** local_store = false: only the methods, whose results go up through the parent's front to the top's store. */
  private async startMethodsOnly(signal: AbortSignal): Promise<void> {
    const parent = this.config.parent;
    if (!parent) throw new PluginError("blob", "STRATA_BLOB_NO_PARENT", "plugins.blob.local_store = false needs a [parent] to send results to; on the top gateway keep local_store = true");
    if (!this.cfg.account_key_file) throw new PluginError("blob", "STRATA_BLOB_NO_KEY", "plugins.blob.local_store = false needs account_key_file: the top gateway's account key (mode 0600)");
    if (!this.cfg.methods) return;
    const key = readSecret(this.cfg.account_key_file, "plugins.blob.account_key_file");
    const host = parent.address ?? parent.hostname;
    const endpoint = new URL(`https://${isIP(host) === 6 ? `[${host}]` : host}:${parent.https_port}${this.cfg.path_prefix}/${this.cfg.account_name}`);
    const client = new CloudClient({ account: this.cfg.account_name, key, endpoint }, {
      timeoutMs: this.cfg.upload.timeout_ms, ca: readFileSync(this.config.tls.ca_file, "utf8"), ...(isIP(parent.hostname) ? {} : { servername: parent.hostname }),
    });
    this.parentClient = client;
    signal.throwIfAborted();
    await this.attachMethods({
      put: async (container, name, body, contentType, metadata) => {
        await client.ensureContainer(container);
        await client.putBlob(container, name, body, { contentType, metadata });
      },
      describe: (container, name) => `${container}/${name} at ${endpoint.href}`,
      where: "parent",
      cloudName: () => undefined,
    });
    const frontBlob = (this.config.plugins["https-front"] as { blob?: string } | undefined)?.blob;
    if (frontBlob !== "parent") this.log.warn({ httpsFrontBlob: frontBlob ?? "(no https-front)" }, "blob local_store is off: set [plugins.https-front] blob = \"parent\" so local clients reach the top's store");
    this.log.info({ parent: endpoint.href }, "blob methods ready, results go to the parent");
  }

  private async attachMethods(sink: ResultSink): Promise<void> {
    this.ring.attach(this.log);
    this.methods = new EdgeAgentMethods({
      self: this.config.device_id, sink, container: this.cfg.support_container, ring: this.ring,
      bundle: () => this.bundle(), scrub: (t) => this.scrub(t),
      modules: () => this.moduleLogs(),
      // The root knows the whole tree (its registry) and reaches every gateway's $edgeAgent through its hub.
      ...(this.config.parent ? {} : { tree: { identities: this.identities, hub: this.hub } }),
    });
    await this.ensureAgentIdentity();
    this.attachment = this.hub.attach(this.methods);
  }

  /**
   * The agent's process and container modules' output, through its own `GetModuleLogs` on this gateway's
   * `$edgeAgent` (plugins never import each other). Without the agent that call reaches this plugin's link,
   * which has no such method: no modules.
   */
  private async moduleLogs(): Promise<ModuleLogSource[]> {
    const r = await this.hub.invokeMethod(`${this.config.device_id}/$edgeAgent`, {
      methodName: "GetModuleLogs", payload: { schemaVersion: "1.0", items: [{ id: ".*" }], encoding: "none", contentType: "text" }, responseTimeoutInSeconds: 10,
    });
    if (r.status !== 200 || !Array.isArray(r.payload)) return [];
    return (r.payload as { id?: unknown; payload?: unknown }[])
      .filter((m) => typeof m.id === "string")
      .map((m) => ({ id: m.id as string, lines: String(m.payload ?? "").split("\n").filter((l) => l !== "") }));
  }

  async stop(): Promise<void> {
    for (const u of this.unmounts) u();
    this.unmounts = [];
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    await this.sweeping;
    this.attachment?.detach();
    this.attachment = undefined;
    await this.methods?.settle();
    this.methods = undefined;
    this.ring.detach();
    await this.uploader?.stop();
    this.uploader = undefined;
    this.parentClient?.close();
    this.parentClient = undefined;
  }

  /**
   * The root's service API reaches a module only when its identity exists: create `{self}/$edgeAgent` there
   * as IoT Edge does. A child gets identities from its parent (scope sync), so it creates none itself.
   */
  private async ensureAgentIdentity(): Promise<void> {
    const id = `${this.config.device_id}/$edgeAgent`;
    if (this.config.parent || this.identities.get(id)) return;
    await this.identities.put({
      id, deviceId: this.config.device_id, moduleId: "$edgeAgent", status: "enabled", edge: false, parent: this.config.device_id,
      auth: { type: "sas", primaryKey: generateKey(), secondaryKey: generateKey() },
    });
  }

  /** deviceAutoDelete: blobs older than after_minutes go, unless the cloud does not have them yet (retainWhileUploading). */
  async sweep(now = Date.now()): Promise<number> {
    const store = this.store;
    if (!store) return 0;
    const cutoff = now - this.cfg.auto_delete.after_minutes * 60_000;
    let deleted = 0;
    for (const c of await store.listContainers()) {
      for (const b of await store.listBlobs(c.name)) {
        if (b.modified > cutoff) continue;
        if (this.cfg.auto_delete.retain_while_uploading && this.uploader?.targetOf(c.name) !== undefined && b.uploadedEtag !== b.etag) continue;
        if (await store.deleteBlob(c.name, b.name, b.etag)) deleted++;
      }
    }
    if (deleted > 0) this.log.info({ deleted }, "blob auto-delete");
    return deleted;
  }

  /** Support bundle contents: config (secrets redacted), `strata check` when core offers it, stats. */
  private async bundle(): Promise<Record<string, unknown>> {
    const core = (await import("../../core/index.js")) as unknown as Record<string, unknown>;
    const runChecks = core["runChecks"] as ((c: StrataConfig) => Promise<unknown>) | undefined;
    let check: unknown = "core/index.ts does not export runChecks to plugins";
    if (typeof runChecks === "function") check = await runChecks(this.config).catch((err: unknown) => `check failed: ${(err as Error).message}`);
    const hub = this.hub as unknown as { stats?: () => unknown };
    return {
      config: redact(this.config),
      check,
      hub: typeof hub.stats === "function" ? hub.stats() : undefined,
      blob: {
        usedBytes: this.store?.usedBytes(), quotaBytes: this.store?.quotaBytes(),
        server: this.server?.stats, uploader: this.uploader?.stats,
      },
      process: { pid: process.pid, uptimeSecs: Math.round(process.uptime()), memory: process.memoryUsage(), node: process.version },
    };
  }

  /** Every secret this gateway knows, removed from text that leaves it (defence behind redact()). */
  private scrub(text: string): string {
    const secrets = new Set<string>();
    const tryRead = (path: string | undefined): void => {
      if (!path) return;
      try {
        const s = readFileSync(path, "utf8").trim();
        if (s.length >= 8) secrets.add(s);
      } catch {
        // unreadable here: then it cannot leak from here either
      }
    };
    tryRead(this.config.identity?.key_file);
    tryRead(this.config.service?.owner_key_file);
    tryRead(this.config.tls.key_file);
    tryRead(this.cfg.upload.connection_string_file);
    tryRead(this.cfg.account_key_file ?? join(blobDataDir(this.config), "account.key"));
    if (this.cloud) secrets.add(this.cloud.key);
    // Credentials derived from keys (SAS signatures, connection strings) are not in the set: match their shapes.
    let out = text
      .replace(/(sig=)[^&\s"';]+/gi, "$1[redacted]")
      .replace(/((?:SharedAccessKey|AccountKey)=)[^;\s"']+/gi, "$1[redacted]");
    for (const s of secrets) {
      out = out.split(s).join("[redacted]");
      // JSON-escaped forms (PEM newlines, slashes)
      const escaped = JSON.stringify(s).slice(1, -1);
      if (escaped !== s) out = out.split(escaped).join("[redacted]");
    }
    return out;
  }
}

const SECRET_KEY = /(key|password|secret|token|signature|connection_string)$/i;

/** A copy of a config with secret-looking values replaced; `*_file` keys (paths) are kept. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, SECRET_KEY.test(k) && typeof v === "string" ? "[redacted]" : redact(v)]));
  }
  return value;
}
