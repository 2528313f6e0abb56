import { join } from "node:path";
import {
  inject, injectable, PluginError, sinkQueue, TOKENS,
  type Hub, type HttpFront, type Identities, type Logger, type Plugin, type Store, type StrataConfig,
} from "../../core/index.js";
import type { RootConfig } from "./config.js";
import type { RegistryMeta } from "./service/devices.js";
import { serviceApi } from "./service/api.js";
import { DeviceRegistry } from "./service/registry.js";
import { TelemetryLogWriter } from "./telemetry/log-writer.js";
import { telemetryLogDir } from "./telemetry/segments.js";
import { TELEMETRY_SINK, TelemetryLogSink } from "./telemetry/sink.js";

export const PLUGIN_NAME = "root";
/** How often age retention runs between rotations. */
const RETENTION_INTERVAL_MS = 60_000;

/** The plugin's data folder, `<data_dir>/plugins/root`, where the telemetry log lives. */
export function rootDataDir(config: Pick<StrataConfig, "data_dir">): string {
  return join(config.data_dir, "plugins", PLUGIN_NAME);
}

/**
 * The root gateway's own duties: IoT Hub's service REST API on core's HTTPS listener, and the telemetry
 * log, a northbound sink that `strata telemetry tail` reads. Refuses to run on a gateway with a [parent].
 */
@injectable()
export class RootPlugin implements Plugin {
  private mounted = false;
  private running = false;
  private writer: TelemetryLogWriter | undefined;
  private unconsume: (() => void) | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;

  constructor(
    @inject(TOKENS.Hub) private readonly hub: Hub,
    @inject(TOKENS.Identities) private readonly identities: Identities,
    @inject(TOKENS.Store) private readonly store: Store,
    @inject(TOKENS.HttpFront) private readonly front: HttpFront,
    @inject(TOKENS.Config) private readonly config: StrataConfig,
    @inject(TOKENS.PluginConfig) private readonly settings: RootConfig,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.config.parent) {
      throw new PluginError(PLUGIN_NAME, "STRATA_ROOT_HAS_PARENT",
        `this gateway has a [parent] (${this.config.parent.hostname}), so it is not the root; remove [plugins.root] ` +
          `from its config (only the top gateway serves the service API and the telemetry log)`);
    }
    if (!this.config.service) {
      this.log.warn({}, "no [service] owner_key_file: every service api request will be refused");
    }
    try {
      this.mountServiceApi();
      if (this.settings.telemetry_log.enabled) await this.startTelemetryLog(signal);
      this.running = true;
      this.log.info({ telemetryLog: this.settings.telemetry_log.enabled ? sinkQueue(TELEMETRY_SINK) : false }, "root service api and telemetry log ready");
    } catch (err) {
      await this.stop();
      if (err instanceof PluginError) throw err;
      throw new PluginError(PLUGIN_NAME, "STRATA_ROOT_START_FAILED", `could not start: ${(err as Error).message}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.unconsume?.();
    this.unconsume = undefined;
    clearInterval(this.retentionTimer);
    this.retentionTimer = undefined;
    const writer = this.writer;
    this.writer = undefined;
    await writer?.close();
  }

  /** Routes stay mounted for the life of the HTTPS listener (fastify cannot remove them); stopped, they answer 503. */
  private mountServiceApi(): void {
    if (this.mounted) return;
    const registry = new DeviceRegistry(this.identities, this.hub, this.store.kv<RegistryMeta>("root.registry"));
    this.front.register(serviceApi({
      identities: this.identities,
      hub: this.hub,
      registry,
      logger: this.log,
      isRunning: () => this.running,
    }));
    this.mounted = true;
  }

  private async startTelemetryLog(signal: AbortSignal): Promise<void> {
    const cfg = this.settings.telemetry_log;
    const writer = new TelemetryLogWriter({
      dir: telemetryLogDir(rootDataDir(this.config)),
      maxBytes: cfg.max_bytes,
      maxAgeMs: cfg.max_age_hours * 3_600_000,
      segmentBytes: cfg.segment_bytes,
      logger: this.log,
    });
    this.writer = writer;
    await writer.open();
    signal.throwIfAborted();
    this.hub.addSink(TELEMETRY_SINK);
    this.unconsume = this.hub.consume(sinkQueue(TELEMETRY_SINK), new TelemetryLogSink(writer, this.log));
    this.retentionTimer = setInterval(() => {
      writer.enforceRetention().catch((err: unknown) => this.log.warn({ err }, "telemetry log retention failed"));
    }, RETENTION_INTERVAL_MS);
    this.retentionTimer.unref();
  }
}
