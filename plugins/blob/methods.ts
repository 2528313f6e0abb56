import { randomUUID } from "node:crypto";
import type { C2DOutcome, DeviceLink, MethodRequest, MethodResult, Principal } from "../../core/index.js";
import type { LogRing } from "./log-ring.js";

/** Where task results go: the local blob store, or the top's through the parent's front. */
export interface ResultSink {
  put(container: string, name: string, body: Buffer, contentType: string, metadata: Record<string, string>): Promise<void>;
  /** Human-readable destination for the task message. */
  describe(container: string, name: string): string;
}

/** IoT Edge's task states (GetTaskStatus). */
export type TaskStatus = "NotStarted" | "Running" | "Completed" | "Failed" | "Cancelled" | "Unknown";

export interface Task {
  id: string;
  kind: "UploadModuleLogs" | "UploadSupportBundle";
  status: TaskStatus;
  message: string;
  /** Where the result went: `<container>/<blob>` in the local blob store. */
  blob?: string;
}

/** What a support bundle is made of; the plugin gathers it (redacted) at the time of the call. */
export type BundleSource = () => Promise<Record<string, unknown>>;

export interface MethodsOptions {
  self: string;
  sink: ResultSink;
  container: string;
  ring: LogRing;
  bundle: BundleSource;
  /** Removes secrets from text about to leave the gateway. */
  scrub: (text: string) => string;
}

/** Syslog severities (IoT Edge's `loglevel` filter) to the lowest pino level they admit. */
const SYSLOG_TO_PINO = [60, 60, 60, 50, 40, 30, 30, 20];

/**
 * `$edgeAgent`'s log and support methods on this gateway: `UploadModuleLogs`, `UploadSupportBundle` (both
 * answer at once with a task id and write their result into the local blob store, from where the uploader
 * sends it to cloud storage) and `GetTaskStatus`.
 */
export class EdgeAgentMethods implements DeviceLink {
  readonly principal: Principal;
  readonly head = "blob";
  readonly tasks = new Map<string, Task>();
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly opts: MethodsOptions) {
    this.principal = { id: `${opts.self}/$edgeAgent`, deviceId: opts.self, moduleId: "$edgeAgent", method: "on-behalf-of", actor: opts.self, authChain: [`${opts.self}/$edgeAgent`, opts.self] };
  }

  accepts(kind: "c2d" | "inputs" | "desired" | "methods"): boolean {
    return kind === "methods";
  }
  async deliverC2D(): Promise<C2DOutcome> {
    return "rejected";
  }
  async deliverInput(): Promise<void> {
    throw new Error("$edgeAgent takes no module inputs");
  }
  desiredPatch(): void {
    // $edgeAgent's desired properties (deployments) are not Strata's business
  }
  close(): void {
    // nothing to disconnect: the link lives as long as the plugin
  }

  /** Waits for tasks still writing (stop). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  async invokeMethod(request: MethodRequest): Promise<MethodResult> {
    const payload = (request.payload && typeof request.payload === "object" ? request.payload : {}) as Record<string, unknown>;
    switch (request.methodName) {
      case "UploadModuleLogs":
        return this.startTask("UploadModuleLogs", () => this.logs(payload));
      case "UploadSupportBundle":
        return this.startTask("UploadSupportBundle", () => this.supportBundle(payload));
      case "GetTaskStatus": {
        const id = payload["correlationId"];
        const task = typeof id === "string" ? this.tasks.get(id) : undefined;
        if (!task) return { status: 404, payload: { status: "Unknown", message: `no task ${String(id)}`, correlationId: id ?? null } };
        return { status: 200, payload: { status: task.status, message: task.message, correlationId: task.id } };
      }
      default:
        return { status: 404, payload: { message: `$edgeAgent has no method ${request.methodName}; it has UploadModuleLogs, UploadSupportBundle, GetTaskStatus` } };
    }
  }

  private startTask(kind: Task["kind"], work: () => Promise<{ blob: string }>): MethodResult {
    const task: Task = { id: randomUUID(), kind, status: "Running", message: "" };
    this.tasks.set(task.id, task);
    const p = work().then(
      (r) => {
        task.status = "Completed";
        task.blob = r.blob;
        task.message = `written to ${this.opts.sink.describe(this.opts.container, r.blob)}`;
      },
      (err: unknown) => {
        task.status = "Failed";
        task.message = (err as Error).message;
      },
    );
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
    return { status: 200, payload: { status: "NotStarted", message: "", correlationId: task.id } };
  }

  private async logs(payload: Record<string, unknown>): Promise<{ blob: string }> {
    const items = Array.isArray(payload["items"]) ? (payload["items"] as Record<string, unknown>[]) : [{}];
    const lines: string[] = [];
    for (const item of items) {
      const filter = (item["filter"] ?? {}) as Record<string, unknown>;
      const idPattern = typeof item["id"] === "string" ? item["id"] : ".*";
      const selected = this.opts.ring.select({
        ...optNum("since", parseTime(filter["since"])),
        ...optNum("until", parseTime(filter["until"])),
        ...optNum("minLevel", typeof filter["loglevel"] === "number" ? SYSLOG_TO_PINO[Math.max(0, Math.min(7, filter["loglevel"]))] : undefined),
        ...optNum("tail", typeof filter["tail"] === "number" ? filter["tail"] : undefined),
        ...(typeof filter["regex"] === "string" ? { regex: new RegExp(filter["regex"]) } : {}),
      });
      const idRe = new RegExp(idPattern);
      for (const l of selected) if (idRe.test(moduleOf(l.line))) lines.push(l.line);
    }
    const blob = `logs/${this.opts.self}/${new Date().toISOString().replace(/[:.]/g, "-")}.log`;
    await this.write(blob, `${lines.join("\n")}\n`, "text/plain");
    return { blob };
  }

  private async supportBundle(payload: Record<string, unknown>): Promise<{ blob: string }> {
    const bundle = await this.opts.bundle();
    const logs = this.opts.ring.select({ ...optNum("since", parseTime(payload["since"])), ...optNum("until", parseTime(payload["until"])) }).map((l) => l.line);
    const doc = JSON.stringify({ gateway: this.opts.self, created: new Date().toISOString(), ...bundle, logs }, null, 2);
    const blob = `support-bundles/${this.opts.self}/${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
    await this.write(blob, doc, "application/json");
    return { blob };
  }

  private async write(name: string, text: string, contentType: string): Promise<void> {
    await this.opts.sink.put(this.opts.container, name, Buffer.from(this.opts.scrub(text), "utf8"), contentType, { gateway: this.opts.self.replace(/[^A-Za-z0-9_]/g, "_") });
  }
}

function optNum<K extends string>(k: K, v: number | undefined): Partial<Record<K, number>> {
  return v === undefined ? {} : ({ [k]: v } as Record<K, number>);
}

/** Unix seconds, an ISO date, or a relative `15m` / `2h` / `1d` (IoT Edge's `since`/`until`). */
export function parseTime(v: unknown, now = Date.now()): number | undefined {
  if (typeof v === "number") return v * 1000;
  if (typeof v !== "string" || v === "") return undefined;
  const rel = /^(\d+)\s*([smhd])$/.exec(v.trim());
  if (rel) return now - Number(rel[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as "s" | "m" | "h" | "d"];
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

/** The plugin or area a pino line came from (what `items[].id` matches). */
function moduleOf(line: string): string {
  const m = /"plugin":"([^"]*)"/.exec(line) ?? /"area":"([^"]*)"/.exec(line);
  return m ? m[1]! : "strata";
}
