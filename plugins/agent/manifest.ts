import { RouteTable, type RouteSpec } from "../../core/index.js";
import { credentialsFromRuntime, type RegistryCredential } from "./registry-auth.js";

/** edgeAgent's deployment status codes (reported as `lastDesiredStatus.code`). */
export const DEPLOYMENT_CODES = {
  ok: 200,
  malformed: 400,
  /** Strata: a module's type has no runtime on this gateway (e.g. container without a Docker socket). */
  notAcceptable: 406,
  badSchemaVersion: 412,
  empty: 417,
  failed: 500,
} as const;

export type RestartPolicy = "never" | "on-failure" | "on-unhealthy" | "always";
export type DesiredStatus = "running" | "stopped";

/** One module of `$edgeAgent.properties.desired.modules`, normalised. */
export interface ModuleSpec {
  name: string;
  /** "process" (Strata) or "docker" (IoT Edge's container modules). */
  type: string;
  version: string;
  status: DesiredStatus;
  restartPolicy: RestartPolicy;
  imagePullPolicy: "on-create" | "never";
  startupOrder: number;
  /** As written in the manifest (`image`/`createOptions` for docker; `command`/`args`/`workingDir`/`user` for process). */
  settings: Record<string, unknown>;
  env: Record<string, string>;
}

export interface Deployment {
  /** `$version` of the `$edgeAgent` desired properties this came from. */
  version: number;
  schemaVersion: string;
  modules: ModuleSpec[];
  routes: RouteSpec[];
  /** `$edgeHub.storeAndForwardConfiguration.timeToLiveSecs`, when given. */
  ttlSecs: number | undefined;
  /** `$edgeAgent` `runtime.settings.registryCredentials`: who container images are pulled as, per registry. */
  registryCredentials: RegistryCredential[];
}

/** Why a manifest was refused: the code edgeAgent would report and a description naming the field. */
export class ManifestError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "ManifestError";
  }
}

const AGENT_SCHEMAS = ["1.0", "1.1"];
const HUB_SCHEMAS = ["1.0", "1.1", "1.2"];
const POLICIES: readonly RestartPolicy[] = ["never", "on-failure", "on-unhealthy", "always"];
const MODULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const bad = (field: string, what: string): ManifestError => new ManifestError(DEPLOYMENT_CODES.malformed, `${field} ${what}`);

/** Whether a desired-properties document carries a deployment at all (only `$version`/`$metadata` is none). */
export function hasDeployment(desired: Obj): boolean {
  return Object.keys(desired).some((k) => !k.startsWith("$"));
}

/**
 * The deployment in `$edgeAgent` and `$edgeHub` desired properties, checked whole before anything is applied:
 * routes are compiled on a scratch table so a bad route refuses the deployment, not half of it.
 * Throws ManifestError with edgeAgent's code: 417 no deployment, 412 schema version, 400 malformed.
 */
export function parseDeployment(agentDesired: Obj, hubDesired: Obj | undefined): Deployment {
  if (!hasDeployment(agentDesired)) throw new ManifestError(DEPLOYMENT_CODES.empty, "$edgeAgent has no deployment in its desired properties; apply a deployment manifest");
  const schemaVersion = agentDesired["schemaVersion"];
  if (typeof schemaVersion !== "string") throw bad("$edgeAgent.schemaVersion", "is missing; set it to \"1.1\"");
  if (!AGENT_SCHEMAS.includes(schemaVersion)) {
    throw new ManifestError(DEPLOYMENT_CODES.badSchemaVersion, `$edgeAgent.schemaVersion "${schemaVersion}" is not supported; use one of ${AGENT_SCHEMAS.join(", ")}`);
  }
  const modulesIn = agentDesired["modules"] ?? {};
  if (!isObj(modulesIn)) throw bad("$edgeAgent.modules", "must be an object of modules by name");
  const modules = Object.entries(modulesIn).filter(([, m]) => m !== null).map(([name, m]) => parseModule(name, m));

  let routes: RouteSpec[] = [];
  let ttlSecs: number | undefined;
  if (hubDesired && hasDeployment(hubDesired)) {
    const hubSchema = hubDesired["schemaVersion"];
    if (typeof hubSchema !== "string") throw bad("$edgeHub.schemaVersion", "is missing; set it to \"1.1\"");
    if (!HUB_SCHEMAS.includes(hubSchema)) {
      throw new ManifestError(DEPLOYMENT_CODES.badSchemaVersion, `$edgeHub.schemaVersion "${hubSchema}" is not supported; use one of ${HUB_SCHEMAS.join(", ")}`);
    }
    const saf = hubDesired["storeAndForwardConfiguration"];
    if (saf !== undefined && saf !== null) {
      if (!isObj(saf)) throw bad("$edgeHub.storeAndForwardConfiguration", "must be an object");
      const ttl = saf["timeToLiveSecs"];
      if (ttl !== undefined) {
        if (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl <= 0) throw bad("$edgeHub.storeAndForwardConfiguration.timeToLiveSecs", "must be a positive integer (seconds)");
        ttlSecs = ttl;
      }
    }
    routes = parseRoutes(hubDesired["routes"]);
    try {
      new RouteTable().setRoutes(routes);
    } catch (err) {
      throw bad("$edgeHub.routes", `are invalid: ${(err as Error).message}`);
    }
  }
  const version = typeof agentDesired["$version"] === "number" ? agentDesired["$version"] : 0;
  return { version, schemaVersion, modules, routes, ttlSecs, registryCredentials: credentialsFromRuntime(agentDesired["runtime"]) };
}

function parseRoutes(input: unknown): RouteSpec[] {
  if (input === undefined || input === null) return [];
  if (!isObj(input)) throw bad("$edgeHub.routes", "must be an object of routes by name");
  const out: RouteSpec[] = [];
  for (const [name, r] of Object.entries(input)) {
    if (r === null) continue;
    if (typeof r === "string") {
      out.push({ name, route: r });
      continue;
    }
    if (!isObj(r) || typeof r["route"] !== "string") throw bad(`$edgeHub.routes.${name}`, "must be a route string or {route, priority, timeToLiveSecs}");
    const priority = r["priority"];
    const ttl = r["timeToLiveSecs"];
    if (priority !== undefined && (typeof priority !== "number" || !Number.isInteger(priority) || priority < 0 || priority > 9)) {
      throw bad(`$edgeHub.routes.${name}.priority`, "must be an integer 0-9");
    }
    if (ttl !== undefined && (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl <= 0)) {
      throw bad(`$edgeHub.routes.${name}.timeToLiveSecs`, "must be a positive integer");
    }
    out.push({ name, route: r["route"], ...(priority !== undefined ? { priority } : {}), ...(ttl !== undefined ? { timeToLiveSecs: ttl } : {}) });
  }
  return out;
}

function parseModule(name: string, m: unknown): ModuleSpec {
  const field = `$edgeAgent.modules.${name}`;
  if (!MODULE_NAME.test(name)) throw bad(field, "has an invalid name: use letters, digits, '.', '_' or '-' (at most 64)");
  if (!isObj(m)) throw bad(field, "must be an object");
  const type = m["type"];
  if (typeof type !== "string" || type === "") throw bad(`${field}.type`, "is missing (\"process\" or \"docker\")");
  const status = m["status"] ?? "running";
  if (status !== "running" && status !== "stopped") throw bad(`${field}.status`, "must be \"running\" or \"stopped\"");
  const restartPolicy = m["restartPolicy"] ?? "always";
  if (!POLICIES.includes(restartPolicy as RestartPolicy)) throw bad(`${field}.restartPolicy`, `must be one of ${POLICIES.join(", ")}`);
  const pull = m["imagePullPolicy"] ?? "on-create";
  if (pull !== "on-create" && pull !== "never") throw bad(`${field}.imagePullPolicy`, "must be \"on-create\" or \"never\"");
  const settings = m["settings"] ?? {};
  if (!isObj(settings)) throw bad(`${field}.settings`, "must be an object");
  const version = m["version"] ?? "";
  if (typeof version !== "string") throw bad(`${field}.version`, "must be a string");
  const startupOrder = m["startupOrder"] ?? 4294967295;
  if (typeof startupOrder !== "number" || !Number.isInteger(startupOrder) || startupOrder < 0) throw bad(`${field}.startupOrder`, "must be a non-negative integer");
  const env: Record<string, string> = {};
  const envIn = m["env"] ?? {};
  if (!isObj(envIn)) throw bad(`${field}.env`, "must be an object of {\"NAME\": {\"value\": …}}");
  for (const [k, v] of Object.entries(envIn)) {
    if (v === null) continue;
    if (!isObj(v) || v["value"] === undefined || v["value"] === null || typeof v["value"] === "object") {
      throw bad(`${field}.env.${k}`, "must be {\"value\": <string, number or boolean>}");
    }
    env[k] = String(v["value"]);
  }
  return {
    name, type, version, status, restartPolicy: restartPolicy as RestartPolicy, imagePullPolicy: pull,
    startupOrder, settings, env,
  };
}

/** Whether a running module must be recreated for the new spec (IoT Edge: version, settings, env, type change). */
export function needsRestart(before: ModuleSpec, after: ModuleSpec): boolean {
  return before.type !== after.type || before.version !== after.version
    || JSON.stringify(before.settings) !== JSON.stringify(after.settings) || JSON.stringify(before.env) !== JSON.stringify(after.env);
}
