import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  inject, injectable, PluginError, TOKENS,
  type Hub, type Identities, type Logger, type Plugin, type Router, type StrataConfig,
} from "../../core/index.js";
import { EdgeAgent } from "./agent.js";
import type { AgentConfig } from "./config.js";
import { ContainerRuntime } from "./container-runtime.js";
import { ProcessRuntime } from "./process-runtime.js";
import type { ModuleRuntime } from "./runtime.js";
import { registryAuthFor } from "./registry-auth.js";

export const PLUGIN_NAME = "agent";

/** The plugin's data folder, `<data_dir>/plugins/agent`. */
export function agentDataDir(config: Pick<StrataConfig, "data_dir">): string {
  return join(config.data_dir, "plugins", PLUGIN_NAME);
}

/**
 * `[plugins.agent]`: IoT Edge's edgeAgent in-process. Applies the deployment in this gateway's `$edgeAgent`
 * twin (modules as processes or containers, routes and TTL in the hub) and reports module states there.
 */
@injectable()
export class AgentPlugin implements Plugin {
  agent: EdgeAgent | undefined;
  private runtimes: ModuleRuntime[] = [];

  constructor(
    @inject(TOKENS.Hub) private readonly hub: Hub,
    @inject(TOKENS.Identities) private readonly identities: Identities,
    @inject(TOKENS.Router) private readonly router: Router,
    @inject(TOKENS.Config) private readonly config: StrataConfig,
    @inject(TOKENS.PluginConfig) private readonly settings: AgentConfig,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const s = this.settings;
    this.runtimes = [new ProcessRuntime({ logLines: s.log_lines, inheritEnv: s.inherit_env })];
    if (s.container.enabled) {
      this.runtimes.push(new ContainerRuntime({
        socket: s.container.socket, apiVersion: s.container.api_version, pullThrough: s.container.pull_through,
        logLines: s.log_lines,
        registryAuth: registryAuthFor(this.config, s.container.pull_through, () => this.agent?.registryCredentials() ?? []),
      }));
    }
    const caFile = this.config.tls.ca_file;
    this.agent = new EdgeAgent({
      self: this.config.device_id,
      isRoot: this.config.parent === undefined,
      hub: this.hub,
      identities: this.identities,
      router: this.router,
      runtimes: this.runtimes,
      socketDir: s.workload_dir ?? join(agentDataDir(this.config), "workload"),
      trustBundle: () => readFileSync(caFile, "utf8"),
      hubHostName: this.config.hub,
      gatewayHostName: s.gateway_hostname ?? this.config.hostname,
      logger: this.log,
      backoffMinMs: s.backoff_min_ms,
      backoffMaxMs: s.backoff_max_ms,
      resetAfterMs: s.reset_after_ms,
      stopGraceMs: s.stop_grace_ms,
      healthIntervalMs: s.health_interval_ms,
      logLines: s.log_lines,
    });
    try {
      await this.agent.start();
      signal.throwIfAborted();
    } catch (err) {
      await this.stop();
      throw new PluginError(PLUGIN_NAME, "STRATA_AGENT_START_FAILED", `could not start: ${(err as Error).message}`, { cause: err });
    }
    this.log.info({ runtimes: this.runtimes.map((r) => r.type) }, "agent ready");
  }

  async stop(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    await agent?.stop();
    for (const r of this.runtimes) await r.close?.();
    this.runtimes = [];
  }
}
