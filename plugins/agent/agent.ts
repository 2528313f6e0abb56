import { mkdir } from "node:fs/promises";
import { arch, platform } from "node:os";
import { join } from "node:path";
import {
  generateKey,
  type Attachment, type DeviceLink, type Hub, type Identities, type Logger, type MethodRequest, type MethodResult, type Router, type RouteSpec,
} from "../../core/index.js";
import { AgentLink } from "./link.js";
import type { RegistryCredential } from "./registry-auth.js";
import { DEPLOYMENT_CODES, ManifestError, needsRestart, parseDeployment, type Deployment, type ModuleSpec } from "./manifest.js";
import type { ModuleRuntime, StartContext } from "./runtime.js";
import { ModuleSupervisor } from "./supervisor.js";
import { WORKLOAD_API_VERSION, WorkloadApi } from "./workload.js";

/** The hub's extras for links (CoreHub has them; the Hub interface does not): to coexist with another `$edgeAgent` link. */
type LinkAwareHub = Hub & { linkOf?(id: string): DeviceLink | undefined; watchLinks?(listener: (id: string) => void): () => void };

export interface EdgeAgentOptions {
  self: string;
  isRoot: boolean;
  hub: Hub;
  identities: Identities;
  router: Router;
  runtimes: readonly ModuleRuntime[];
  /** Folder of the per-module workload sockets. */
  socketDir: string;
  trustBundle: () => string;
  /** `IOTEDGE_IOTHUBHOSTNAME`: the hub name the modules' SAS tokens name. */
  hubHostName: string;
  /** `IOTEDGE_GATEWAYHOSTNAME`: where the modules connect (this gateway's hostname). */
  gatewayHostName: string;
  logger: Logger;
  backoffMinMs: number;
  backoffMaxMs: number;
  resetAfterMs: number;
  stopGraceMs: number;
  healthIntervalMs: number;
  /** Log lines kept per module across restarts. */
  logLines?: number;
}

interface Managed {
  supervisor: ModuleSupervisor;
  workload: WorkloadApi | undefined;
}

/**
 * edgeAgent's job on one gateway: watches its own `$edgeAgent` twin, applies the deployment in it (routes and
 * TTL live in the hub, modules reconciled through their runtimes) and reports the outcome and every module's
 * state as reported properties of that twin. A refused deployment changes nothing.
 */
export class EdgeAgent {
  readonly agentId: string;
  readonly hubId: string;
  private readonly modules = new Map<string, Managed>();
  private readonly runtimes = new Map<string, ModuleRuntime>();
  private readonly link: AgentLink;
  private attachment: Attachment | undefined;
  private unwatch: (() => void) | undefined;
  private delegateAtStart: DeviceLink | undefined;
  private applying: Promise<void> = Promise.resolve();
  private applyQueued = false;
  private reporting: Promise<void> | undefined;
  private reportDirty = false;
  private removed = new Set<string>();
  private lastStatus: { code: number; description: string } = { code: DEPLOYMENT_CODES.empty, description: "no deployment yet" };
  private lastDesiredVersion = 0;
  private deployment: Deployment | undefined;
  /** The credentials of the deployment being applied (pulls happen while it is reconciled). */
  private credentials: readonly RegistryCredential[] = [];

  /** `registryCredentials` of the deployment being applied, for the container runtime's pulls. */
  registryCredentials(): readonly RegistryCredential[] {
    return this.credentials;
  }
  private closed = false;

  constructor(private readonly opts: EdgeAgentOptions) {
    this.agentId = `${opts.self}/$edgeAgent`;
    this.hubId = `${opts.self}/$edgeHub`;
    for (const r of opts.runtimes) this.runtimes.set(r.type, r);
    this.link = new AgentLink(opts.self, {
      desired: () => this.schedule(),
      method: (req) => this.method(req),
    });
  }

  /** Attaches the agent link and applies the deployment the twin holds now. */
  async start(): Promise<void> {
    await mkdir(this.opts.socketDir, { recursive: true, mode: 0o700 });
    if (this.opts.isRoot) await this.ensureIdentity("$edgeAgent");
    const hub = this.opts.hub as LinkAwareHub;
    const before = hub.linkOf?.(this.agentId);
    if (before && before !== this.link) this.link.delegate = this.delegateAtStart = before;
    this.attachment = hub.attach(this.link);
    // A plugin attaching its own $edgeAgent link later replaces ours: take it as the delegate and attach again.
    this.unwatch = hub.watchLinks?.((id) => {
      if (id !== this.agentId || this.closed) return;
      const now = hub.linkOf?.(id);
      if (now && now !== this.link) {
        this.link.delegate = now;
        this.attachment = hub.attach(this.link);
      }
    });
    this.schedule();
    await this.applying;
  }

  async stop(): Promise<void> {
    this.closed = true;
    this.unwatch?.();
    this.attachment?.detach();
    if (this.delegateAtStart) this.opts.hub.attach(this.delegateAtStart);
    await this.applying.catch(() => undefined);
    await Promise.all([...this.modules.keys()].map((name) => this.remove(name)));
    await this.reporting;
  }

  /** Current state of a module (tests, status pages). */
  moduleState(name: string): ModuleSupervisor | undefined {
    return this.modules.get(name)?.supervisor;
  }

  /** Runs an apply after the one in progress; patches arriving meanwhile fold into one more apply. */
  schedule(): void {
    if (this.closed || this.applyQueued) return;
    this.applyQueued = true;
    this.applying = this.applying.then(async () => {
      this.applyQueued = false;
      if (this.closed) return;
      await this.apply().catch((err: unknown) => {
        this.opts.logger.error({ err }, "deployment not applied");
        this.lastStatus = { code: DEPLOYMENT_CODES.failed, description: (err as Error).message };
        this.report();
      });
    });
  }

  private async apply(): Promise<void> {
    const agentTwin = await this.opts.hub.getTwin(this.agentId);
    const desired = agentTwin.properties.desired;
    const hubTwin = await this.opts.hub.getTwin(this.hubId).catch(() => undefined);
    this.lastDesiredVersion = desired.$version;
    let deployment: Deployment;
    try {
      deployment = parseDeployment(desired, hubTwin?.properties.desired);
      for (const m of deployment.modules) {
        if (!this.runtimes.has(m.type)) {
          throw new ManifestError(DEPLOYMENT_CODES.notAcceptable,
            `$edgeAgent.modules.${m.name}.type "${m.type}" has no runtime on this gateway (have: ${[...this.runtimes.keys()].join(", ")}); enable it in [plugins.agent]`);
        }
      }
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err;
      this.opts.logger.warn({ code: err.code, version: desired.$version, reason: err.message }, "deployment refused");
      this.lastStatus = { code: err.code, description: err.message };
      this.report();
      return;
    }
    if (hubTwin && Object.keys(hubTwin.properties.desired).some((k) => !k.startsWith("$"))) {
      this.opts.router.setRoutes(withTtl(deployment.routes, deployment.ttlSecs));
    }
    this.credentials = deployment.registryCredentials;
    await this.reconcile(deployment.modules);
    this.deployment = deployment;
    this.lastStatus = { code: DEPLOYMENT_CODES.ok, description: "" };
    this.opts.logger.info({ version: deployment.version, modules: deployment.modules.length, routes: deployment.routes.length }, "deployment applied");
    this.report();
  }

  private async reconcile(specs: readonly ModuleSpec[]): Promise<void> {
    const wanted = new Map(specs.map((s) => [s.name, s]));
    for (const name of [...this.modules.keys()]) if (!wanted.has(name)) await this.remove(name);
    const ordered = [...specs].sort((a, b) => a.startupOrder - b.startupOrder);
    for (const spec of ordered) {
      const existing = this.modules.get(spec.name);
      if (existing && !needsRestart(existing.supervisor.spec, spec)) {
        await existing.supervisor.update(spec);
        continue;
      }
      if (existing) await this.remove(spec.name, false);
      this.add(spec);
    }
  }

  private add(spec: ModuleSpec): void {
    const runtime = this.runtimes.get(spec.type)!;
    const managed: Managed = { supervisor: undefined as unknown as ModuleSupervisor, workload: undefined };
    managed.supervisor = new ModuleSupervisor(spec, {
      runtime,
      prepare: (s) => this.prepare(s, managed),
      changed: () => this.report(),
      logger: this.opts.logger,
      backoffMinMs: this.opts.backoffMinMs,
      backoffMaxMs: this.opts.backoffMaxMs,
      resetAfterMs: this.opts.resetAfterMs,
      stopGraceMs: this.opts.stopGraceMs,
      healthIntervalMs: this.opts.healthIntervalMs,
      ...(this.opts.logLines !== undefined ? { logLines: this.opts.logLines } : {}),
    });
    this.modules.set(spec.name, managed);
    this.removed.delete(spec.name);
    managed.supervisor.start();
  }

  private async remove(name: string, reportRemoval = true): Promise<void> {
    const m = this.modules.get(name);
    if (!m) return;
    this.modules.delete(name);
    await m.supervisor.stop("removed from the deployment");
    await m.workload?.close();
    if (reportRemoval) {
      this.removed.add(name);
      this.report();
    }
  }

  /** The module's identity (created on the root; synced from the parent elsewhere), workload socket and env. */
  private async prepare(spec: ModuleSpec, managed: Managed): Promise<StartContext> {
    const id = `${this.opts.self}/${spec.name}`;
    const record = this.opts.isRoot ? await this.ensureIdentity(spec.name) : this.opts.identities.get(id);
    if (!record) throw new Error(`identity ${id} has not reached this gateway yet (it comes from the parent)`);
    if (record.auth.type !== "sas") throw new Error(`identity ${id} uses ${record.auth.type}; modules need SAS keys (the workload API signs with them)`);
    const generationId = String(record.generation);
    if (!managed.workload) {
      managed.workload = new WorkloadApi({
        socketPath: join(this.opts.socketDir, `${spec.name}.sock`),
        module: { moduleId: spec.name, generationId },
        keys: () => {
          const r = this.opts.identities.get(id);
          return r?.auth.type === "sas" ? { primary: r.auth.primaryKey, secondary: r.auth.secondaryKey } : undefined;
        },
        trustBundle: this.opts.trustBundle,
      });
      await managed.workload.listen();
    }
    const workload = managed.workload;
    workload.setGeneration(generationId);
    return {
      env: {
        ...spec.env,
        IOTEDGE_WORKLOADURI: workload.uri,
        IOTEDGE_DEVICEID: this.opts.self,
        IOTEDGE_MODULEID: spec.name,
        IOTEDGE_MODULEGENERATIONID: generationId,
        IOTEDGE_IOTHUBHOSTNAME: this.opts.hubHostName,
        IOTEDGE_GATEWAYHOSTNAME: this.opts.gatewayHostName,
        IOTEDGE_AUTHSCHEME: "sasToken",
        IOTEDGE_APIVERSION: WORKLOAD_API_VERSION,
      },
      workloadSocket: join(this.opts.socketDir, `${spec.name}.sock`),
      onUser: (uid, gid) => workload.chown(uid, gid),
    };
  }

  private async ensureIdentity(moduleId: string) {
    const id = `${this.opts.self}/${moduleId}`;
    const existing = this.opts.identities.get(id);
    if (existing) return existing;
    return this.opts.identities.put({
      id, deviceId: this.opts.self, moduleId, status: "enabled", edge: false, parent: this.opts.self,
      auth: { type: "sas", primaryKey: generateKey(), secondaryKey: generateKey() },
    });
  }

  // ---- reported properties -------------------------------------------------------------------------

  /** Coalesces state changes into reported patches: one in flight, then one more with whatever changed. */
  report(): void {
    this.reportDirty = true;
    if (this.reporting) return;
    this.reporting = (async () => {
      while (this.reportDirty) {
        this.reportDirty = false;
        await this.opts.hub.patchReported(this.agentId, this.reportedPatch()).catch((err: unknown) => {
          this.opts.logger.warn({ err }, "agent state not reported");
        });
      }
    })().finally(() => {
      this.reporting = undefined;
    });
  }

  /** Waits until every state change so far is in the reported properties. */
  async flushReports(): Promise<void> {
    while (this.reporting) await this.reporting;
  }

  /** edgeAgent's reported shape: lastDesiredStatus/Version, runtime, systemModules and modules (removed ones null). */
  reportedPatch(): Record<string, unknown> {
    const modules: Record<string, unknown> = {};
    for (const name of this.removed) modules[name] = null;
    for (const [name, { supervisor }] of this.modules) {
      const s = supervisor.spec;
      modules[name] = {
        ...supervisor.state,
        type: s.type, version: s.version, status: s.status, restartPolicy: s.restartPolicy, imagePullPolicy: s.imagePullPolicy,
        startupOrder: s.startupOrder, settings: s.settings,
      };
    }
    return {
      schemaVersion: "1.1",
      lastDesiredVersion: this.lastDesiredVersion,
      lastDesiredStatus: this.lastStatus,
      runtime: { platform: { os: platform(), architecture: arch(), version: process.version }, type: "strata" },
      systemModules: {
        edgeAgent: { runtimeStatus: "running", type: "strata" },
        edgeHub: { runtimeStatus: "running", type: "strata" },
      },
      modules,
    };
  }

  // ---- edgeAgent's direct methods ----------------------------------------------------------------------

  private async method(req: MethodRequest): Promise<MethodResult | undefined> {
    const payload = (req.payload && typeof req.payload === "object" ? req.payload : {}) as Record<string, unknown>;
    switch (req.methodName) {
      case "ping":
        return { status: 200, payload: null };
      case "RestartModule": {
        const name = payload["id"];
        const m = typeof name === "string" ? this.modules.get(name) : undefined;
        if (!m) return { status: 404, payload: { message: `no module ${String(name)} in the deployment` } };
        await m.supervisor.restart();
        return { status: 200, payload: null };
      }
      case "GetModuleLogs": {
        const items = Array.isArray(payload["items"]) ? (payload["items"] as Record<string, unknown>[]) : [{ id: ".*" }];
        const out: { id: string; payloadBytes?: undefined; payload: string }[] = [];
        for (const item of items) {
          const re = new RegExp(typeof item["id"] === "string" ? `^(?:${item["id"]})$` : ".*");
          const filter = (item["filter"] ?? {}) as Record<string, unknown>;
          const tail = typeof filter["tail"] === "number" ? filter["tail"] : undefined;
          for (const [name, m] of this.modules) {
            if (!re.test(name)) continue;
            out.push({ id: name, payload: (m.supervisor.logs(tail) ?? []).join("\n") });
          }
        }
        return { status: 200, payload: out };
      }
      default:
        return undefined;
    }
  }

  /** The deployment in force (the last one accepted). */
  get current(): Deployment | undefined {
    return this.deployment;
  }
}

/** `$edgeHub` routes with the store-and-forward TTL as each route's TTL where the route sets none. */
export function withTtl(routes: readonly RouteSpec[], ttlSecs: number | undefined): RouteSpec[] {
  if (ttlSecs === undefined) return [...routes];
  return routes.map((r) => ({ ...r, timeToLiveSecs: r.timeToLiveSecs ?? ttlSecs }));
}
