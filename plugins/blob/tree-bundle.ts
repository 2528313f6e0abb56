import type { Hub, Identities, MethodResult } from "../../core/index.js";
import type { TaskStatus } from "./methods.js";

/** One gateway's part in a whole-tree support bundle (what the index lists). */
export interface TreeEntry {
  gateway: string;
  /** Its parent gateway; absent for the root. */
  parent?: string;
  depth: number;
  status: TaskStatus;
  /** Why it failed, or where its bundle went. */
  message: string;
  /** The bundle's container and blob name in the store it was written to. */
  container?: string;
  blob?: string;
  /** `<cloud container>/<blob>` once uploaded, when that container is mapped for upload; null when it is not. */
  cloud?: string | null;
}

export interface TreeBundleOptions {
  identities: Pick<Identities, "self" | "list" | "get">;
  hub: Pick<Hub, "invokeMethod">;
  /** The cloud name of a blob that reached the top's (this gateway's) store, if its container is uploaded. */
  cloudName(container: string, blob: string): string | undefined;
  /** Seconds each gateway gets from the call to a finished task. */
  timeoutSecs: number;
  pollMs?: number;
  /** How many gateways are asked at once. */
  parallel?: number;
  /** Sent to every gateway's UploadSupportBundle. */
  since?: unknown;
  until?: unknown;
  signal: AbortSignal;
  /** Called on every change of an entry (progress for GetTaskStatus). */
  onProgress?: () => void;
}

/** The hierarchy as the root's registry knows it (edge identities and their parents), the root first, depth first. */
export function treeGateways(identities: Pick<Identities, "self" | "list">): { gateway: string; parent?: string; depth: number }[] {
  const root = identities.self;
  const gateways = identities.list().filter((r) => r.edge && !r.moduleId && r.id !== root);
  const known = new Set([root, ...gateways.map((g) => g.id)]);
  const childrenOf = new Map<string, string[]>();
  const parentOf = new Map<string, string>();
  for (const g of gateways) {
    const parent = g.parent && known.has(g.parent) ? g.parent : root;
    parentOf.set(g.id, parent);
    childrenOf.set(parent, [...(childrenOf.get(parent) ?? []), g.id]);
  }
  const out: { gateway: string; parent?: string; depth: number }[] = [];
  const seen = new Set<string>();
  const visit = (gateway: string, depth: number): void => {
    if (seen.has(gateway)) return; // a parent cycle in the registry: each gateway once
    seen.add(gateway);
    out.push({ gateway, depth, ...(gateway === root ? {} : { parent: parentOf.get(gateway)! }) });
    for (const c of (childrenOf.get(gateway) ?? []).sort()) visit(c, depth + 1);
  };
  visit(root, 0);
  return out;
}

/**
 * Runs UploadSupportBundle on every gateway's `$edgeAgent` through the hub (down the hierarchy) and follows
 * each task with GetTaskStatus until Completed or Failed. A gateway that is not connected, does not answer or
 * does not finish within `timeoutSecs` is Failed with the reason; none holds up the others for longer.
 */
export async function runTreeBundle(entries: TreeEntry[], opts: TreeBundleOptions): Promise<void> {
  const queue = [...entries];
  const worker = async (): Promise<void> => {
    for (let e = queue.shift(); e; e = queue.shift()) await bundleOne(e, opts);
  };
  await Promise.all(Array.from({ length: Math.min(opts.parallel ?? 8, entries.length) }, worker));
}

async function bundleOne(e: TreeEntry, opts: TreeBundleOptions): Promise<void> {
  const agent = `${e.gateway}/$edgeAgent`;
  const deadline = Date.now() + opts.timeoutSecs * 1000;
  const set = (status: TaskStatus, message: string): void => {
    e.status = status;
    e.message = message;
    opts.onProgress?.();
  };
  const call = async (methodName: string, payload: unknown): Promise<MethodResult> => {
    const secs = Math.min(15, Math.max(1, Math.ceil((deadline - Date.now()) / 1000)));
    let timer: NodeJS.Timeout | undefined;
    // The hub times methods out itself; this guard only keeps a hub that never settles from stalling the walk.
    const guard = new Promise<MethodResult>((resolve) => {
      timer = setTimeout(() => resolve({ status: 504, payload: { message: `${agent} did not answer ${methodName} within ${secs} s` } }), secs * 1000 + 2000);
    });
    try {
      return await Promise.race([opts.hub.invokeMethod(agent, { methodName, payload, responseTimeoutInSeconds: secs }), guard]);
    } catch (err) {
      return { status: 500, payload: { message: (err as Error).message } };
    } finally {
      clearTimeout(timer);
    }
  };
  if (opts.signal.aborted) return set("Cancelled", "the gateway stopped before this gateway was asked");
  const payload = { schemaVersion: "1.0", ...(opts.since !== undefined ? { since: opts.since } : {}), ...(opts.until !== undefined ? { until: opts.until } : {}) };
  const started = await call("UploadSupportBundle", payload);
  const correlationId = (started.payload as { correlationId?: unknown } | null)?.correlationId;
  if (started.status !== 200 || typeof correlationId !== "string") return set("Failed", reasonOf(started, agent, opts));
  set("Running", `task ${correlationId}`);
  let lastProblem = "";
  while (!opts.signal.aborted) {
    if (Date.now() >= deadline) return set("Failed", `no result within ${opts.timeoutSecs} s${lastProblem ? ` (last: ${lastProblem})` : ""}`);
    await sleep(Math.min(opts.pollMs ?? 500, Math.max(0, deadline - Date.now())), opts.signal);
    const s = await call("GetTaskStatus", { schemaVersion: "1.0", correlationId });
    const p = (s.payload ?? {}) as { status?: string; message?: string; container?: string; blob?: string; cloud?: string | null; stored?: string };
    if (s.status === 200 && p.status === "Completed") {
      if (typeof p.container === "string") e.container = p.container;
      if (typeof p.blob === "string") e.blob = p.blob;
      // A bundle sent up to the top landed in this store: this gateway's mapping names it in the cloud.
      const cloud = p.stored === "parent" && e.container && e.blob ? opts.cloudName(e.container, e.blob) : p.cloud;
      e.cloud = cloud ?? null;
      return set("Completed", p.message ?? "");
    }
    if (s.status === 200 && (p.status === "Failed" || p.status === "Cancelled")) return set("Failed", p.message || `task ${p.status}`);
    if (s.status === 404 && p.status === "Unknown") return set("Failed", `${e.gateway} no longer knows task ${correlationId} (it restarted?)`);
    // Not connected for a moment, or slow to answer: keep asking until the deadline.
    if (s.status !== 200) lastProblem = reasonOf(s, agent, opts);
  }
  set("Cancelled", "the gateway stopped before this task finished");
}

function reasonOf(r: MethodResult, agent: string, opts: TreeBundleOptions): string {
  const message = (r.payload as { message?: unknown } | null)?.message;
  const text = `${r.status}${typeof message === "string" ? ` ${message}` : ""}`;
  if (r.status === 404 && !opts.identities.get(agent)) {
    return `${text}; there is no identity ${agent} at the root: create it (service API PUT /devices/{id}/modules/$edgeAgent)`;
  }
  return text;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
