import type { Logger } from "../../core/index.js";
import type { ModuleSpec } from "./manifest.js";
import type { ExitInfo, ModuleRuntime, RunningModule, StartContext } from "./runtime.js";

/** edgeAgent's module runtime statuses. */
export type RuntimeStatus = "running" | "backoff" | "unhealthy" | "failed" | "stopped";

/** What the agent reports per module (edgeAgent's reported `modules.{name}` fields). */
export interface ModuleState {
  runtimeStatus: RuntimeStatus;
  statusDescription: string;
  exitCode: number | null;
  restartCount: number;
  lastStartTimeUtc: string | null;
  lastExitTimeUtc: string | null;
  lastRestartTimeUtc: string | null;
}

export interface SupervisorOptions {
  runtime: ModuleRuntime;
  /** Identity, workload socket and environment of the module; throws while they are not ready (retried with backoff). */
  prepare: (spec: ModuleSpec) => Promise<StartContext>;
  /** Told after every state change (the agent coalesces them into reported patches). */
  changed: () => void;
  logger: Logger;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** A run at least this long resets the restart count and the backoff (IoT Edge: 10 minutes). */
  resetAfterMs: number;
  stopGraceMs: number;
  healthIntervalMs: number;
  /** Lines kept across restarts (default 1000). */
  logLines?: number;
  now?: () => number;
}

/**
 * Keeps one module as its spec says: starts it, restarts it per restartPolicy with exponential backoff,
 * watches health where the runtime has it, and holds the state edgeAgent reports.
 */
export class ModuleSupervisor {
  readonly state: ModuleState = {
    runtimeStatus: "stopped", statusDescription: "", exitCode: null, restartCount: 0,
    lastStartTimeUtc: null, lastExitTimeUtc: null, lastRestartTimeUtc: null,
  };
  private current: RunningModule | undefined;
  /** Lines of ended runs, so logs survive a restart. */
  private history: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  /** Bumped by stop(): an exit or a delayed restart of an older run is ignored. */
  private epoch = 0;
  private restartAsked = false;
  private readonly now: () => number;

  constructor(
    public spec: ModuleSpec,
    private readonly opts: SupervisorOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  get running(): RunningModule | undefined {
    return this.current;
  }

  /** The last lines the module wrote, across restarts (earlier runs first). */
  logs(tail?: number): string[] {
    const all = [...this.history, ...(this.current?.logs() ?? [])].slice(-(this.opts.logLines ?? 1000));
    return tail === undefined ? all : all.slice(-tail);
  }

  /** Applies a spec that needs no new workload (restartPolicy, status, startupOrder). */
  async update(spec: ModuleSpec): Promise<void> {
    const wasRunning = this.spec.status === "running";
    this.spec = spec;
    if (spec.status === "running" && !wasRunning) this.start();
    else if (spec.status === "stopped" && wasRunning) await this.stop("stopped by the deployment");
    else this.opts.changed();
  }

  /** Starts the workload when the spec wants it running. */
  start(): void {
    if (this.spec.status !== "running") {
      this.set({ runtimeStatus: "stopped", statusDescription: "desired status is stopped" });
      return;
    }
    const problem = this.opts.runtime.validate(this.spec);
    if (problem) {
      this.set({ runtimeStatus: "failed", statusDescription: problem });
      return;
    }
    void this.launch(this.epoch);
  }

  /** Stops the workload and any pending restart; the state becomes stopped. */
  async stop(description = "stopped"): Promise<void> {
    this.epoch++;
    clearTimeout(this.timer);
    clearInterval(this.healthTimer);
    this.timer = undefined;
    const running = this.current;
    this.current = undefined;
    if (running) {
      await running.stop(this.opts.stopGraceMs);
      this.keepLogs(running);
      const info = await running.exited;
      this.state.exitCode = info.code;
      this.state.lastExitTimeUtc = new Date(this.now()).toISOString();
    }
    this.set({ runtimeStatus: "stopped", statusDescription: description });
  }

  /** RestartModule: ends the workload now and starts it again, counted as a restart. */
  async restart(): Promise<void> {
    const running = this.current;
    if (!running) {
      this.start();
      return;
    }
    this.restartAsked = true;
    await running.stop(this.opts.stopGraceMs);
  }

  private async launch(epoch: number): Promise<void> {
    if (epoch !== this.epoch) return;
    let running: RunningModule;
    try {
      const ctx = await this.opts.prepare(this.spec);
      if (epoch !== this.epoch) return;
      running = await this.opts.runtime.start(this.spec, ctx);
    } catch (err) {
      if (epoch !== this.epoch) return;
      this.opts.logger.warn({ err, module: this.spec.name }, "module did not start");
      this.scheduleRestart(epoch, `could not start: ${(err as Error).message}`);
      return;
    }
    if (epoch !== this.epoch) {
      await running.stop(this.opts.stopGraceMs);
      return;
    }
    this.current = running;
    this.startedAt = this.now();
    this.state.lastStartTimeUtc = new Date(this.startedAt).toISOString();
    this.set({ runtimeStatus: "running", statusDescription: "running" });
    this.opts.logger.info({ module: this.spec.name, ref: running.ref, restartCount: this.state.restartCount }, "module started");
    this.watchHealth(epoch, running);
    void running.exited.then((info) => this.exited(epoch, running, info));
  }

  private watchHealth(epoch: number, running: RunningModule): void {
    const health = running.health?.bind(running);
    if (!health) return;
    this.healthTimer = setInterval(() => {
      void health().then(async (h) => {
        if (epoch !== this.epoch || this.current !== running) return;
        if (h === "unhealthy" && this.state.runtimeStatus === "running") {
          this.set({ runtimeStatus: "unhealthy", statusDescription: "the module's health check fails" });
          if (this.spec.restartPolicy === "on-unhealthy" || this.spec.restartPolicy === "always") {
            this.restartAsked = true;
            await running.stop(this.opts.stopGraceMs);
          }
        } else if (h === "healthy" && this.state.runtimeStatus === "unhealthy") {
          this.set({ runtimeStatus: "running", statusDescription: "running" });
        }
      }, (err: unknown) => this.opts.logger.debug({ err, module: this.spec.name }, "module health not read"));
    }, this.opts.healthIntervalMs);
    this.healthTimer.unref();
  }

  private exited(epoch: number, running: RunningModule, info: ExitInfo): void {
    if (epoch !== this.epoch || this.current !== running) return;
    clearInterval(this.healthTimer);
    this.current = undefined;
    this.keepLogs(running);
    const now = this.now();
    this.state.exitCode = info.code;
    this.state.lastExitTimeUtc = new Date(now).toISOString();
    const asked = this.restartAsked;
    this.restartAsked = false;
    if (now - this.startedAt >= this.opts.resetAfterMs) this.state.restartCount = 0;
    const policy = this.spec.restartPolicy;
    const restart = asked || policy === "always" || (policy === "on-failure" && info.code !== 0);
    this.opts.logger.info({ module: this.spec.name, exitCode: info.code, signal: info.signal, restart }, "module exited");
    const how = `exited with code ${info.code}${info.signal ? ` (${info.signal})` : ""}`;
    if (!restart) {
      this.set({ runtimeStatus: info.code === 0 ? "stopped" : "failed", statusDescription: how });
      return;
    }
    this.scheduleRestart(epoch, how, asked);
  }

  private scheduleRestart(epoch: number, why: string, immediate = false): void {
    const n = this.state.restartCount;
    const delay = immediate ? 0 : Math.min(this.opts.backoffMaxMs, this.opts.backoffMinMs * 2 ** Math.min(n, 20));
    this.state.restartCount = n + 1;
    this.set({ runtimeStatus: "backoff", statusDescription: `${why}; restarting in ${delay} ms` });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (epoch !== this.epoch) return;
      this.state.lastRestartTimeUtc = new Date(this.now()).toISOString();
      void this.launch(epoch);
    }, delay);
  }

  private keepLogs(running: RunningModule): void {
    this.history = [...this.history, ...running.logs()].slice(-(this.opts.logLines ?? 1000));
  }

  private set(s: Pick<ModuleState, "runtimeStatus" | "statusDescription">): void {
    this.state.runtimeStatus = s.runtimeStatus;
    this.state.statusDescription = s.statusDescription;
    this.opts.changed();
  }
}
