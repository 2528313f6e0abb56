import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { inject, injectable, isStrataError, TOKENS, type HttpFront, type Logger, type Plugin, type StrataConfig } from "../../core/index.js";
import { blobHeaderRoute, notServedHere } from "./blob-header-route.js";
import type { HttpsFrontConfig } from "./config.js";
import { ParentProxy } from "./parent-proxy.js";

/** Where one kind of request goes, after resolving `auto`. */
export type Destination = "local" | "parent" | "off";

/** Resolves `auto` against the gateway config: a local plugin section wins, else the parent, else nothing. */
export function resolveDestination(setting: "auto" | "parent" | "off", localPlugin: string, config: StrataConfig): Destination {
  if (setting === "off") return "off";
  if (setting === "parent") return config.parent ? "parent" : "off";
  const section = config.plugins[localPlugin];
  if (section && section.enabled !== false) return "local";
  return config.parent ? "parent" : "off";
}

/**
 * The API proxy (IoT Edge's API proxy module, in-process): forwards `/v2/…` and blob requests (by path prefix or
 * `x-ms-version` header) to the parent's front unless this gateway serves them itself, plus an allow-listed
 * `/parent/…` passthrough.
 */
@injectable()
export class HttpsFrontPlugin implements Plugin {
  private proxy: ParentProxy | undefined;
  private unmounts: (() => void)[] = [];
  /** Where `x-ms-version` requests on unserved paths go while started; the fastify hook is registered once. */
  private blobByHeader: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  private hookRegistered = false;

  constructor(
    @inject(TOKENS.PluginConfig) private readonly cfg: HttpsFrontConfig,
    @inject(TOKENS.Config) private readonly config: StrataConfig,
    @inject(TOKENS.HttpFront) private readonly front: HttpFront,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const registry = resolveDestination(this.cfg.registry, "registry-cache", this.config);
    const blob = resolveDestination(this.cfg.blob, "blob", this.config);
    const parent = this.config.parent;
    if (parent && (registry === "parent" || blob === "parent" || this.cfg.parent_paths.length > 0)) {
      this.proxy = new ParentProxy(
        { host: parent.address ?? parent.hostname, port: parent.https_port, servername: parent.hostname, ca: readFileSync(this.config.tls.ca_file, "utf8") },
        this.cfg.timeout_ms,
        this.log,
      );
      const proxy = this.proxy;
      if (registry === "parent") this.unmounts.push(this.front.mountRaw("/v2", (req, res) => proxy.forward(req, res)));
      if (blob === "parent") this.unmounts.push(this.front.mountRaw(this.cfg.blob_path_prefix, (req, res) => proxy.forward(req, res)));
      if (this.cfg.parent_paths.length > 0) this.unmounts.push(this.front.mountRaw("/parent", (req, res) => this.passthrough(proxy, req, res)));
      if (blob === "parent") this.blobByHeader = (req, res) => proxy.forward(req, res);
    }
    if (blob === "local") {
      const section = this.config.plugins["blob"] as { path_prefix?: string; account_name?: string; serve_account_root?: boolean } | undefined;
      const served = [`${section?.path_prefix ?? "/blob"}/…`, ...(section?.serve_account_root === false ? [] : [`/${section?.account_name ?? "local"}/…`])];
      this.blobByHeader = (req, res) => notServedHere(req, res, served);
    }
    if (this.blobByHeader) this.routeBlobHeader();
    this.log.info({ registry, blob, blobByHeader: this.blobByHeader !== undefined, parentPaths: this.cfg.parent_paths, parent: parent ? `${parent.hostname}:${parent.https_port}` : undefined }, "https front routes");
  }

  async stop(): Promise<void> {
    for (const u of this.unmounts) u();
    this.unmounts = [];
    this.blobByHeader = undefined;
    this.proxy?.close();
    this.proxy = undefined;
  }

  /** `x-ms-version` routing: a fastify hook, since the header (not a path prefix) decides. */
  private routeBlobHeader(): void {
    if (this.hookRegistered) return;
    try {
      this.front.register(blobHeaderRoute(() => this.blobByHeader !== undefined, (req, res) => this.blobByHeader?.(req, res)));
      this.hookRegistered = true;
    } catch (err) {
      // Only a start after the port is listening (never in a gateway's own start order) lands here.
      if (!isStrataError(err, "STRATA_HTTP_ALREADY_LISTENING")) throw err;
      this.log.warn({ err }, "https front: x-ms-version routing is off until the gateway restarts (blob path prefix routing is on)");
    }
  }

  private passthrough(proxy: ParentProxy, req: IncomingMessage, res: ServerResponse): void {
    const rest = (req.url ?? "/parent").slice("/parent".length) || "/";
    const path = rest.split("?")[0]!;
    const allowed = this.cfg.parent_paths.some((p) => path === p || path.startsWith(p.endsWith("/") ? p : `${p}/`));
    if (!allowed) {
      const body = JSON.stringify({ error: `${path} is not in [plugins.https-front] parent_paths`, code: "STRATA_FRONT_PATH_NOT_ALLOWED" });
      res.writeHead(403, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    proxy.forward(req, res, rest);
  }
}
