import { randomUUID } from "node:crypto";
import type { C2DOutcome, DeviceLink, Hub, Identities, MethodRequest, MethodResult, Principal } from "../../core/index.js";
import type { LogRing } from "./log-ring.js";
import { logsFormat, parseLogsRequest, parseTime, PayloadError, renderLogs, selectLogs, type ModuleLogSource } from "./module-logs.js";
import { runTreeBundle, treeGateways, type TreeEntry } from "./tree-bundle.js";

/** Where task results go: the local blob store, or the top's through the parent's front. */
export interface ResultSink {
  put(container: string, name: string, body: Buffer, contentType: string, metadata: Record<string, string>): Promise<void>;
  /** Human-readable destination for the task message. */
  describe(container: string, name: string): string;
  /** `local`: this gateway's store; `parent`: sent up to the top's store. */
  readonly where: "local" | "parent";
  /** `<cloud container>/<blob>` when this gateway uploads that container; undefined when it does not (or cannot tell). */
  cloudName(container: string, name: string): string | undefined;
}

/** IoT Edge's task states (GetTaskStatus). */
export type TaskStatus = "NotStarted" | "Running" | "Completed" | "Failed" | "Cancelled" | "Unknown";

export interface Task {
  id: string;
  kind: "UploadModuleLogs" | "UploadSupportBundle";
  status: TaskStatus;
  message: string;
  /** Where the result went: `<container>/<blob>` in the result sink. */
  container?: string;
  blob?: string;
  cloud?: string | null;
  /** A whole-tree bundle: each gateway's progress. */
  gateways?: TreeEntry[];
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
  /** The agent's modules' captured output (none without the agent). */
  modules?: () => Promise<ModuleLogSource[]>;
  /** On the root: what a whole-tree bundle needs (the registry knows the tree, the hub reaches every gateway). */
  tree?: { identities: Pick<Identities, "self" | "list" | "get">; hub: Pick<Hub, "invokeMethod">; pollMs?: number };
}

/**
 * `$edgeAgent`'s log and support methods on this gateway: `UploadModuleLogs`, `UploadSupportBundle` (both
 * answer at once with a task id and write their result into the local blob store, from where the uploader
 * sends it to cloud storage) and `GetTaskStatus`. On the root, `UploadSupportBundle` with `tree: true` does
 * it on every gateway of the hierarchy and writes one index.
 */
export class EdgeAgentMethods implements DeviceLink {
  readonly principal: Principal;
  readonly head = "blob";
  readonly tasks = new Map<string, Task>();
  private readonly running = new Set<Promise<void>>();
  private readonly abort = new AbortController();

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

  /** Ends tree walks (their gateways read Cancelled) and waits for tasks still writing (stop). */
  async settle(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled([...this.running]);
  }

  async invokeMethod(request: MethodRequest): Promise<MethodResult> {
    const payload = (request.payload && typeof request.payload === "object" ? request.payload : {}) as Record<string, unknown>;
    switch (request.methodName) {
      case "UploadModuleLogs":
        try {
          parseLogsRequest(payload); // a bad payload is refused now, naming its field, not as a Failed task later
        } catch (err) {
          if (err instanceof PayloadError) return { status: 400, payload: { status: "Failed", message: err.message, field: err.field } };
          throw err;
        }
        return this.startTask("UploadModuleLogs", () => this.logs(payload));
      case "UploadSupportBundle": {
        if (payload["tree"] === true) {
          const tree = this.opts.tree;
          if (!tree) return { status: 400, payload: { status: "Failed", message: `tree: whole-tree bundles are run on the root; ${this.opts.self} is not the root` } };
          return this.startTask("UploadSupportBundle", (task) => this.treeBundle(task, payload, tree));
        }
        return this.startTask("UploadSupportBundle", () => this.supportBundle(payload));
      }
      case "GetTaskStatus": {
        const id = payload["correlationId"];
        const task = typeof id === "string" ? this.tasks.get(id) : undefined;
        if (!task) return { status: 404, payload: { status: "Unknown", message: `no task ${String(id)}`, correlationId: id ?? null } };
        return { status: 200, payload: this.taskStatus(task) };
      }
      default:
        return { status: 404, payload: { message: `$edgeAgent has no method ${request.methodName}; it has UploadModuleLogs, UploadSupportBundle, GetTaskStatus` } };
    }
  }

  private startTask(kind: Task["kind"], work: (task: Task) => Promise<{ blob: string }>): MethodResult {
    const task: Task = { id: randomUUID(), kind, status: "Running", message: "" };
    this.tasks.set(task.id, task);
    // Bounded: the oldest finished tasks are forgotten (GetTaskStatus then answers Unknown, as after a restart).
    for (const [id, old] of this.tasks) {
      if (this.tasks.size <= MAX_TASKS) break;
      if (old.status !== "Running") this.tasks.delete(id);
    }
    const p = work(task).then(
      (r) => {
        task.status = "Completed";
        task.blob = r.blob;
        task.container = this.opts.container;
        task.cloud = this.opts.sink.cloudName(this.opts.container, r.blob) ?? null;
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

  /** GetTaskStatus: IoT Edge's `{ status, message, correlationId }` and, as Strata's extras, where the result went. */
  private taskStatus(task: Task): Record<string, unknown> {
    const out: Record<string, unknown> = { status: task.status, message: task.message, correlationId: task.id };
    if (task.blob !== undefined) Object.assign(out, { container: task.container, blob: task.blob, stored: this.opts.sink.where, cloud: task.cloud ?? null });
    if (task.gateways) {
      const done = task.gateways.filter((g) => g.status === "Completed" || g.status === "Failed" || g.status === "Cancelled").length;
      Object.assign(out, { done, total: task.gateways.length, gateways: task.gateways });
    }
    return out;
  }

  private async logs(payload: Record<string, unknown>): Promise<{ blob: string }> {
    const req = parseLogsRequest(payload);
    const modules = (await this.opts.modules?.().catch(() => [])) ?? [];
    const fmt = logsFormat(req);
    const text = renderLogs(selectLogs(req, this.opts.ring, modules), req.contentType);
    const blob = `logs/${this.opts.self}/${stamp()}${fmt.suffix}`;
    await this.write(blob, text, fmt.contentType, fmt.encode);
    return { blob };
  }

  private async supportBundle(payload: Record<string, unknown>): Promise<{ blob: string }> {
    const bundle = await this.opts.bundle();
    const since = parseTime(payload["since"]);
    const until = parseTime(payload["until"]);
    const logs = this.opts.ring.select({ ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) }).map((l) => l.line);
    const doc = JSON.stringify({ gateway: this.opts.self, created: new Date().toISOString(), ...bundle, logs }, null, 2);
    const blob = `support-bundles/${this.opts.self}/${stamp()}.json`;
    await this.write(blob, doc, "application/json");
    return { blob };
  }

  /** UploadSupportBundle with `tree: true` on the root: every gateway's bundle, then one index of them. */
  private async treeBundle(task: Task, payload: Record<string, unknown>, tree: NonNullable<MethodsOptions["tree"]>): Promise<{ blob: string }> {
    const started = new Date().toISOString();
    const entries: TreeEntry[] = treeGateways(tree.identities).map((g) => ({ ...g, status: "NotStarted", message: "" }));
    task.gateways = entries;
    const update = (): void => {
      const done = entries.filter((e) => e.status !== "NotStarted" && e.status !== "Running").length;
      const failed = entries.filter((e) => e.status === "Failed" || e.status === "Cancelled").length;
      task.message = `${done}/${entries.length} gateways done${failed ? `, ${failed} failed` : ""}`;
    };
    update();
    const timeoutSecs = typeof payload["timeoutSecs"] === "number" ? Math.max(1, Math.min(3600, payload["timeoutSecs"])) : 120;
    await runTreeBundle(entries, {
      identities: tree.identities, hub: tree.hub, timeoutSecs, signal: this.abort.signal, onProgress: update,
      cloudName: (container, blob) => this.opts.sink.cloudName(container, blob),
      ...(tree.pollMs !== undefined ? { pollMs: tree.pollMs } : {}),
      ...(payload["since"] !== undefined ? { since: payload["since"] } : {}),
      ...(payload["until"] !== undefined ? { until: payload["until"] } : {}),
    });
    update();
    const blob = `support-trees/${stamp()}.json`;
    const index = { root: this.opts.self, started, finished: new Date().toISOString(), container: this.opts.container, gateways: entries };
    await this.write(blob, JSON.stringify(index, null, 2), "application/json");
    return { blob };
  }

  private async write(name: string, text: string, contentType: string, encode: (b: Buffer) => Buffer = (b) => b): Promise<void> {
    // Scrubbed before encoding: a gzip stream would hide a secret from the scrubber.
    const body = encode(Buffer.from(this.opts.scrub(text), "utf8"));
    await this.opts.sink.put(this.opts.container, name, body, contentType, { gateway: this.opts.self.replace(/[^A-Za-z0-9_]/g, "_") });
  }
}

const MAX_TASKS = 1000;

/** A sortable, name-safe time stamp for blob names. */
function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-");
}
