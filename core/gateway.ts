import "./quiet-debug.js";
import "reflect-metadata";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { container as rootContainer, type DependencyContainer } from "tsyringe";
import type { StrataConfig } from "./config/schema.js";
import { readSecret } from "./config/secret.js";
import { StrataError } from "./errors.js";
import { HttpFront } from "./http/front.js";
import { CoreHub } from "./hub/hub.js";
import { IdentityRegistry } from "./identity/registry.js";
import type { AccessPolicy } from "./identity/types.js";
import { Listeners } from "./listeners.js";
import { MetricsRegistry } from "./metrics/metrics.js";
import { createLogger, type Logger } from "./log.js";
import { Pki } from "./pki/pki.js";
import { splitPem } from "./pki/certs.js";
import { mountBackupRoute } from "./pki/backup.js";
import { ServerCertRenewer } from "./pki/renewer.js";
import { TlsFileWatcher } from "./pki/watch.js";
import { PluginHost, type PluginEntry, type PluginStartReport } from "./plugin/host.js";
import { loadPluginEntries } from "./plugin/loader.js";
import { RouteTable } from "./router/route-table.js";
import { ScopeService } from "./scope/service.js";
import { ProvisionService } from "./provision/service.js";
import type { RouteSpec } from "./router/types.js";
import { LevelStore } from "./store/level-store.js";
import { TOKENS } from "./tokens.js";
import { UPSTREAM } from "./hub/queues.js";
import { upstreamFromConfig } from "./upstream/from-config.js";
import type { UpstreamLink } from "./upstream/link.js";

/** Used when `[routes]` is empty: everything a device sends goes up (at the root: to the northbound sinks). */
export const DEFAULT_ROUTES: readonly RouteSpec[] = [{ name: "upstream", route: "FROM /messages/* INTO $upstream" }];

export interface GatewayOptions {
  config: StrataConfig;
  logger?: Logger;
  /** In-process plugins added to those the config names (embedding, tests). */
  extraPlugins?: readonly PluginEntry[];
  /** Built-in plugins that run without a `[plugins.NAME]` section. Default: "mqtt", plus "root" on the root. */
  defaultPlugins?: readonly string[];
  /** Where compiled built-in plugins live. Default: dist/plugins next to dist/core. */
  builtinDir?: string;
  /** Folders whose node_modules hold third-party plugin packages. Default: the working directory. */
  packageDirs?: readonly string[];
  /** How often the `[tls]` files are checked for changes (default core/pki TLS_WATCH_INTERVAL_MS). */
  tlsWatchIntervalMs?: number;
}

/**
 * One Strata gateway: core services wired into a container, plugins started in dependency order, then the
 * HTTPS listener opened (routes must be mounted before it listens). Stop runs in reverse.
 */
export class Gateway {
  private stopping?: Promise<void>;
  /** Scope sync and registration forwarding (core/scope); set by start(). */
  scopeService?: ScopeService;
  /** Factory provisioning (core/provision): `/$strata/provision` on every gateway, enrollment groups on the root. */
  provisioning?: ProvisionService;
  /** The link to the parent (core/upstream); undefined on the root. Set by start(). */
  upstream?: UpstreamLink;
  /** Renews the server certificate before expiry (core/pki); set by start() when the gateway holds its edge CA. */
  renewer?: ServerCertRenewer;
  /** Reloads `[tls]` files changed on disk (core/pki); set by start(). */
  tlsWatcher?: TlsFileWatcher;

  private constructor(
    readonly config: StrataConfig,
    readonly logger: Logger,
    readonly container: DependencyContainer,
    readonly store: LevelStore,
    readonly identities: IdentityRegistry,
    readonly router: RouteTable,
    readonly hub: CoreHub,
    readonly front: HttpFront,
    readonly pki: Pki,
    readonly listeners: Listeners,
    readonly plugins: PluginHost,
    readonly report: PluginStartReport,
  ) {}

  get isRoot(): boolean {
    return this.config.parent === undefined;
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const config = opts.config;
    const logger = opts.logger ?? createLogger({ level: config.log.level });
    const isRoot = config.parent === undefined;

    const cert = readFileSync(config.tls.cert_file, "utf8");
    const key = readSecret(config.tls.key_file, "tls.key_file");
    const ca = readFileSync(config.tls.ca_file, "utf8");
    // The edge CA (when configured) issues children's certificates (`strata child add`).
    const edgeCa = config.tls.edge_ca_cert_file && config.tls.edge_ca_key_file
      ? { cert: readFileSync(config.tls.edge_ca_cert_file, "utf8"), key: readSecret(config.tls.edge_ca_key_file, "tls.edge_ca_key_file") }
      : undefined;
    const pki = new Pki({ cert, key, chain: cert, trustBundle: ca, ...(edgeCa ? { edgeCa } : {}) });

    const store = new LevelStore({
      path: join(config.data_dir, "store"),
      gatewayId: config.device_id,
      quotaBytes: config.store.quota_bytes,
      shareQuota: config.store.share_quota,
      logger: logger.child({ area: "store" }),
    });
    await store.open();
    const undo: (() => Promise<void>)[] = [() => store.close()];
    let gatewayUpstream: UpstreamLink | undefined;
    try {
      const identities = new IdentityRegistry({
        self: config.device_id,
        hubName: config.hub,
        hostnames: [...new Set([config.hostname, config.listen.address])],
        kv: store.kv("identities"),
        policies: isRoot && config.service ? [ownerPolicy(readSecret(config.service.owner_key_file, "service.owner_key_file"))] : [],
        trustedCas: [ca],
        logger: logger.child({ area: "identities" }),
      });
      await identities.load();

      const router = new RouteTable();
      router.setRoutes(routesFromConfig(config));

      const hub = new CoreHub({
        self: config.device_id,
        isRoot,
        store,
        router,
        identities,
        logger: logger.child({ area: "hub" }),
        defaultTtlSecs: config.store.default_ttl_secs,
        maxClients: config.max_clients,
        startPaused: true,
      });
      undo.unshift(() => hub.stop());

      // Every TLS listener (the front here, the heads' own) shares one cap on handshakes in progress.
      const listeners = new Listeners({ maxTlsHandshakes: config.listen.max_tls_handshakes });
      const front = new HttpFront({
        tls: { cert, key, ca },
        address: config.listen.address,
        port: config.listen.https,
        logger: logger.child({ area: "https" }),
        handshakes: listeners.handshakes,
      });
      undo.unshift(() => front.close());
      // Hot reload (core/pki): a renewed certificate or a new trust bundle reaches the front and X.509 checks;
      // the heads subscribe to the same event for their own TLS servers.
      pki.onCertificateChanged((tlsNow) => {
        front.setCertificate(tlsNow.cert, tlsNow.key, tlsNow.ca);
        identities.setTrustedCas(splitPem(tlsNow.ca));
        (gatewayUpstream as { setTrustBundle?: (ca: string) => void } | undefined)?.setTrustBundle?.(tlsNow.ca);
      });
      // `strata backup`: a consistent snapshot of the store and the files the config names.
      mountBackupRoute(front, {
        config, store, identities, logger: logger.child({ area: "backup" }),
        ...(config.identity ? { selfKey: readSecret(config.identity.key_file, "identity.key_file").trim() } : {}),
      });

      // Scope sync and registration forwarding (core/scope): `/$strata/*` routes on the front; on a child, the
      // client that keeps the local identity cache in step with the parent.
      const scopeService = await ScopeService.start({ config, identities, hub, front, store, logger: logger.child({ area: "scope" }) });
      undo.unshift(() => scopeService.stop());
      // Factory provisioning (core/provision): registrations of new gateways, forwarded up like scope's.
      const provisioning = ProvisionService.start({ config, identities, front, store, pki, listeners, logger: logger.child({ area: "provision" }) });
      undo.unshift(async () => provisioning.stop());

      // The upstream link (core/upstream), a child only: drains $upstream to the parent over one AMQP connection.
      const upstream = upstreamFromConfig(config, ca, identities, logger.child({ area: "upstream" }), { localHub: hub });
      gatewayUpstream = upstream;
      if (upstream) {
        const unconsume = hub.consume(UPSTREAM, upstream);
        undo.unshift(async () => { unconsume(); await upstream.stop(); });
      }

      const scope = rootContainer.createChildContainer();
      scope.register(TOKENS.Logger, { useValue: logger });
      scope.register(TOKENS.Config, { useValue: config });
      scope.register(TOKENS.Store, { useValue: store });
      scope.register(TOKENS.Identities, { useValue: identities });
      scope.register(TOKENS.Router, { useValue: router });
      scope.register(TOKENS.Hub, { useValue: hub });
      scope.register(TOKENS.HttpFront, { useValue: front });
      scope.register(TOKENS.Pki, { useValue: pki });
      scope.register(TOKENS.Listeners, { useValue: listeners });
      if (upstream) scope.register(TOKENS.Upstream, { useValue: upstream });
      // Metrics (core/metrics): one registry per gateway; core's collectors read the stats above at scrape time.
      const metrics = new MetricsRegistry();
      metrics.attachCore({ deviceId: config.device_id, isRoot, hub, store, listeners, ...(upstream ? { upstream } : {}) });
      scope.register(TOKENS.Metrics, { useValue: metrics });

      const entries = [
        ...loadPluginEntries(config.plugins, {
          builtinDir: opts.builtinDir ?? join(__dirname, "..", "plugins"),
          defaults: opts.defaultPlugins ?? defaultPlugins(isRoot),
          ...(opts.packageDirs ? { packageDirs: opts.packageDirs } : {}),
        }),
        ...(opts.extraPlugins ?? []),
      ];
      const plugins = new PluginHost(scope, entries, { logger });
      undo.unshift(() => plugins.stop());
      const report = await plugins.start();

      hub.markReady();
      const https = await front.listen();
      listeners.report({ name: "https", address: https.address, port: https.port });
      logger.info({ device: config.device_id, root: isRoot, listeners: listeners.all(), plugins: report.started }, "gateway started");
      const gateway = new Gateway(config, logger, scope, store, identities, router, hub, front, pki, listeners, plugins, report);
      gateway.scopeService = scopeService;
      gateway.provisioning = provisioning;
      const tlsFiles = {
        certFile: config.tls.cert_file, keyFile: config.tls.key_file, caFile: config.tls.ca_file,
        ...(config.tls.edge_ca_cert_file && config.tls.edge_ca_key_file ? { edgeCaCertFile: config.tls.edge_ca_cert_file, edgeCaKeyFile: config.tls.edge_ca_key_file } : {}),
      };
      gateway.tlsWatcher = new TlsFileWatcher({ pki, files: tlsFiles, logger: logger.child({ area: "pki" }), ...(opts.tlsWatchIntervalMs ? { intervalMs: opts.tlsWatchIntervalMs } : {}) });
      gateway.tlsWatcher.start();
      if (pki.edgeCa) {
        gateway.renewer = new ServerCertRenewer({ pki, files: tlsFiles, logger: logger.child({ area: "pki" }) });
        gateway.renewer.start();
      }
      if (upstream) {
        gateway.upstream = upstream;
        upstream.start();
      }
      return gateway;
    } catch (err) {
      for (const step of undo) await step().catch((e: unknown) => logger.warn({ err: e }, "cleanup after failed start"));
      throw err;
    }
  }

  /** Stops plugins (reverse order), the HTTPS listener, the hub's drains, then closes the store. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const errors: unknown[] = [];
      this.renewer?.stop();
      this.tlsWatcher?.stop();
      for (const step of [() => this.plugins.stop(), async () => this.scopeService?.stop(), async () => this.provisioning?.stop(), () => this.front.close(), async () => this.upstream?.stop(), () => this.hub.stop(), () => this.store.close()]) {
        await step().catch((e: unknown) => errors.push(e));
      }
      for (const err of errors) this.logger.error({ err }, "error while stopping");
      this.logger.info({ device: this.config.device_id }, "gateway stopped");
    })();
    return this.stopping;
  }
}

/** Built-in plugins that run without a `[plugins.NAME]` section: both device heads, and on the root its service side. */
export function defaultPlugins(isRoot: boolean): string[] {
  return isRoot ? ["mqtt", "amqp", "root"] : ["mqtt", "amqp"];
}

export function routesFromConfig(config: StrataConfig): RouteSpec[] {
  const entries = Object.entries(config.routes);
  if (entries.length === 0) return [...DEFAULT_ROUTES];
  return entries.map(([name, r]) =>
    typeof r === "string"
      ? { name, route: r }
      : { name, route: r.route, priority: r.priority, ...(r.ttl_secs !== undefined ? { timeToLiveSecs: r.ttl_secs } : {}) },
  );
}

/** The root's `iothubowner` policy: every right, as in IoT Hub. */
export function ownerPolicy(key: string): AccessPolicy {
  if (!key.trim()) throw new StrataError("STRATA_CONFIG_SECRET_EMPTY", "service.owner_key_file is empty; put a base64 key in it (strata start creates one for the embedded default)");
  return { name: "iothubowner", primaryKey: key.trim(), rights: ["RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"] };
}
