import type { ModuleSpec } from "./manifest.js";

/** How a module's workload ended. */
export interface ExitInfo {
  /** Exit code; a signal death is reported as 128 + signal number, as a shell would. */
  code: number;
  signal?: string;
}

/** One started instance of a module. */
export interface RunningModule {
  /** Resolves once, when the workload has ended (for any reason). */
  readonly exited: Promise<ExitInfo>;
  /** Ends the workload: a polite signal, then a kill after `graceMs`. Resolves after it has exited. */
  stop(graceMs: number): Promise<void>;
  /** The last lines the workload wrote (stdout and stderr), oldest first. */
  logs(tail?: number): string[];
  /** Health as the runtime sees it (container health checks); undefined when the runtime has none. */
  health?(): Promise<"healthy" | "unhealthy" | undefined>;
  /** The OS process id (process runtime) or container id. */
  readonly ref: string;
}

/** What a runtime needs besides the spec: the environment the agent computed (IOTEDGE_* and the manifest's env). */
export interface StartContext {
  env: Record<string, string>;
  /** The module's workload socket, to be made reachable inside the workload (containers bind-mount it). */
  workloadSocket: string;
  /** Owner for files the workload must reach (the socket) when it runs as another user. */
  onUser?: (uid: number, gid: number) => Promise<void>;
}

/** A module runtime behind one interface: the agent reconciles against it without knowing what runs. */
export interface ModuleRuntime {
  /** The manifest `type` it runs ("process", "docker"). */
  readonly type: string;
  /** Refuses a spec it cannot run (missing command, image) with a message naming the setting. */
  validate(spec: ModuleSpec): string | undefined;
  start(spec: ModuleSpec, ctx: StartContext): Promise<RunningModule>;
  /** Releases what the runtime holds (connections). */
  close?(): Promise<void>;
}

/** Keeps the last `max` lines of a stream of chunks. */
export class LineRing {
  private readonly lines: string[] = [];
  private partial = "";

  constructor(private readonly max: number) {}

  push(chunk: string, prefix = ""): void {
    const parts = (this.partial + chunk).split("\n");
    this.partial = parts.pop() ?? "";
    for (const line of parts) this.add(prefix + line);
  }

  add(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }

  tail(n?: number): string[] {
    const all = this.partial ? [...this.lines, this.partial] : [...this.lines];
    return n === undefined ? all : all.slice(-n);
  }
}
