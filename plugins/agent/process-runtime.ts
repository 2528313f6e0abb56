import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import type { ModuleSpec } from "./manifest.js";
import { LineRing, type ExitInfo, type ModuleRuntime, type RunningModule, type StartContext } from "./runtime.js";

/** Settings of a `type: "process"` module. `args` may be a JSON-encoded array: twins hold no arrays. */
export interface ProcessSettings {
  command: string;
  args: string[];
  workingDir?: string;
  user?: string;
}

/** Reads `settings` of a process module; a string naming the field at fault when it is wrong. */
export function processSettings(spec: ModuleSpec): ProcessSettings | string {
  const s = spec.settings;
  const field = `$edgeAgent.modules.${spec.name}.settings`;
  if (typeof s["command"] !== "string" || s["command"] === "") return `${field}.command is missing: name the program to run`;
  let args: unknown = s["args"] ?? [];
  if (typeof args === "string") {
    try {
      args = JSON.parse(args);
    } catch {
      return `${field}.args is not a JSON array of strings (twins hold no arrays, so write it as a string: "[\\"a\\",\\"b\\"]")`;
    }
  }
  if (!Array.isArray(args) || !args.every((a) => typeof a === "string")) return `${field}.args must be an array of strings`;
  if (s["workingDir"] !== undefined && typeof s["workingDir"] !== "string") return `${field}.workingDir must be a string`;
  if (s["user"] !== undefined && typeof s["user"] !== "string") return `${field}.user must be a user name or uid`;
  return {
    command: s["command"], args: args as string[],
    ...(typeof s["workingDir"] === "string" ? { workingDir: s["workingDir"] } : {}),
    ...(typeof s["user"] === "string" ? { user: s["user"] } : {}),
  };
}

/** uid/gid of a user name (or numeric uid) from /etc/passwd. */
export function lookupUser(user: string, passwd = "/etc/passwd"): { uid: number; gid: number } | undefined {
  for (const line of readFileSync(passwd, "utf8").split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name === user || uid === user) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

export interface ProcessRuntimeOptions {
  /** Lines kept per module for GetModuleLogs / UploadModuleLogs. */
  logLines: number;
  /** Variables passed from the gateway's own environment (PATH and the like); nothing else leaks in. */
  inheritEnv: readonly string[];
}

/**
 * Modules as OS processes: a command with args, env, working dir, optionally as another user (only when the
 * gateway runs as root; otherwise refused). stdout and stderr are kept as the last N lines.
 */
export class ProcessRuntime implements ModuleRuntime {
  readonly type = "process";

  constructor(private readonly opts: ProcessRuntimeOptions) {}

  validate(spec: ModuleSpec): string | undefined {
    const s = processSettings(spec);
    if (typeof s === "string") return s;
    if (s.user !== undefined) {
      if (!lookupUser(s.user)) return `$edgeAgent.modules.${spec.name}.settings.user "${s.user}" is not a user on this gateway`;
      if (process.getuid?.() !== 0) return `$edgeAgent.modules.${spec.name}.settings.user needs the gateway to run as root; remove it or run the gateway as root`;
    }
    return undefined;
  }

  async start(spec: ModuleSpec, ctx: StartContext): Promise<RunningModule> {
    const s = processSettings(spec);
    if (typeof s === "string") throw new Error(s);
    const env: Record<string, string> = {};
    for (const k of this.opts.inheritEnv) if (process.env[k] !== undefined) env[k] = process.env[k]!;
    Object.assign(env, ctx.env);
    const user = s.user !== undefined ? lookupUser(s.user) : undefined;
    if (user) await ctx.onUser?.(user.uid, user.gid);
    const child = spawn(s.command, s.args, {
      env,
      stdio: ["ignore", "pipe", "pipe"],
      ...(s.workingDir ? { cwd: s.workingDir } : {}),
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    const ring = new LineRing(this.opts.logLines);
    child.stdout.setEncoding("utf8").on("data", (c: string) => ring.push(c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => ring.push(c));
    const exited = new Promise<ExitInfo>((resolve) => {
      let done = false;
      const finish = (info: ExitInfo): void => {
        if (done) return;
        done = true;
        resolve(info);
      };
      child.once("error", (err) => {
        ring.add(`strata: could not start ${s.command}: ${err.message}`);
        finish({ code: 127 });
      });
      child.once("close", (code, signal) => {
        if (signal) finish({ code: 128 + (constants.signals[signal] ?? 0), signal });
        else finish({ code: code ?? 0 });
      });
    });
    // spawn reports a missing program asynchronously: wait for "spawn" or the failure.
    await new Promise<void>((resolve) => {
      child.once("spawn", () => resolve());
      void exited.then(() => resolve());
    });
    return {
      exited,
      ref: String(child.pid ?? ""),
      logs: (tail) => ring.tail(tail),
      async stop(graceMs: number) {
        if (child.exitCode !== null || child.signalCode !== null) {
          await exited;
          return;
        }
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      },
    };
  }
}
