import { request } from "node:http";
import type { ModuleSpec } from "./manifest.js";
import { LineRing, type ExitInfo, type ModuleRuntime, type RunningModule, type StartContext } from "./runtime.js";

/** Where the workload socket appears inside a container (iotedged's path). */
export const CONTAINER_WORKLOAD_SOCKET = "/var/run/iotedge/workload.sock";
/** Label edgeAgent puts on the containers it owns. */
const OWNER_LABEL = "net.azure-devices.edge.owner";

export interface ContainerRuntimeOptions {
  /** The Docker Engine API's unix socket (dockerd, or podman's Docker-compatible service). */
  socket: string;
  apiVersion: string;
  /** Host that `$upstream` in image refs becomes (this gateway's front / registry cache); empty: left as written. */
  pullThrough: string;
  logLines: number;
  /** Credentials for pulls from `registry` (host[:port]; the front's pull user, or this gateway's identity and a SAS token), sent as `X-Registry-Auth`. */
  registryAuth?: (registry: string) => { username: string; password: string } | undefined;
}

/** IoT Edge's `$upstream[:port]/repo:tag` names the parent's registry; here it becomes the pull-through host. */
export function rewriteImage(image: string, pullThrough: string): string {
  if (!pullThrough) return image;
  return image.replace(/^\$upstream(?::\d+)?\//, `${pullThrough}/`);
}

/** The `POST /containers/create` body: createOptions (a JSON string, as in IoT Edge) with env, labels and the workload socket merged in. */
export function containerCreateBody(spec: ModuleSpec, image: string, ctx: StartContext): Record<string, unknown> {
  const raw = spec.settings["createOptions"];
  let options: Record<string, unknown> = {};
  if (typeof raw === "string" && raw.trim() !== "") options = JSON.parse(raw) as Record<string, unknown>;
  else if (raw && typeof raw === "object") options = raw as Record<string, unknown>;
  const env = { ...ctx.env, IOTEDGE_WORKLOADURI: `unix://${CONTAINER_WORKLOAD_SOCKET}` };
  const host = (options["HostConfig"] ?? {}) as Record<string, unknown>;
  const binds = Array.isArray(host["Binds"]) ? (host["Binds"] as string[]) : [];
  return {
    ...options,
    Image: image,
    Env: [...(Array.isArray(options["Env"]) ? (options["Env"] as string[]) : []), ...Object.entries(env).map(([k, v]) => `${k}=${v}`)],
    Labels: { ...((options["Labels"] ?? {}) as Record<string, string>), [OWNER_LABEL]: "strata", "net.azure-devices.edge.version": spec.version },
    HostConfig: { ...host, Binds: [...binds, `${ctx.workloadSocket}:${CONTAINER_WORKLOAD_SOCKET}`] },
  };
}

interface EngineResponse {
  status: number;
  body: Buffer;
}

/**
 * Container modules through the Docker Engine API on a unix socket, to its documented contract: pull
 * (`POST /images/create`), `POST /containers/create?name=`, `/start`, `/wait`, `/stop?t=`, `DELETE ?force=`,
 * `/logs` (multiplexed frames), `/json` (health).
 */
export class ContainerRuntime implements ModuleRuntime {
  readonly type = "docker";

  constructor(private readonly opts: ContainerRuntimeOptions) {}

  validate(spec: ModuleSpec): string | undefined {
    const image = spec.settings["image"];
    if (typeof image !== "string" || image === "") return `$edgeAgent.modules.${spec.name}.settings.image is missing: name the image`;
    const co = spec.settings["createOptions"];
    if (typeof co === "string" && co.trim() !== "") {
      try {
        JSON.parse(co);
      } catch {
        return `$edgeAgent.modules.${spec.name}.settings.createOptions is not JSON`;
      }
    }
    return undefined;
  }

  async start(spec: ModuleSpec, ctx: StartContext): Promise<RunningModule> {
    const image = rewriteImage(String(spec.settings["image"]), this.opts.pullThrough);
    if (spec.imagePullPolicy === "on-create") await this.pull(image);
    await this.call("DELETE", `/containers/${encodeURIComponent(spec.name)}?force=true`).catch(() => undefined);
    const created = await this.call("POST", `/containers/create?name=${encodeURIComponent(spec.name)}`, containerCreateBody(spec, image, ctx));
    if (created.status !== 201) throw engineError("create", created);
    const id = (JSON.parse(created.body.toString("utf8")) as { Id: string }).Id;
    const started = await this.call("POST", `/containers/${id}/start`);
    if (started.status !== 204 && started.status !== 304) throw engineError("start", started);
    let cached: string[] = [];
    const readLogs = async (tail: number): Promise<void> => {
      const r = await this.call("GET", `/containers/${id}/logs?stdout=1&stderr=1&tail=${tail}`);
      if (r.status === 200) cached = demuxLogs(r.body, this.opts.logLines);
    };
    // Resolves after the logs are read: the supervisor keeps a run's logs the moment it learns of the exit.
    const exited = this.call("POST", `/containers/${id}/wait`).then((r): ExitInfo => {
      if (r.status !== 200) return { code: 255 };
      return { code: (JSON.parse(r.body.toString("utf8")) as { StatusCode: number }).StatusCode };
    }, (): ExitInfo => ({ code: 255 })).then(async (info) => {
      await readLogs(this.opts.logLines).catch(() => undefined);
      return info;
    });
    return {
      ref: id,
      exited,
      logs: (tail) => (tail === undefined ? cached : cached.slice(-tail)),
      stop: async (graceMs) => {
        await this.call("POST", `/containers/${id}/stop?t=${Math.ceil(graceMs / 1000)}`).catch(() => undefined);
        await exited;
        await this.call("DELETE", `/containers/${id}?force=true`).catch(() => undefined);
      },
      health: async () => {
        const r = await this.call("GET", `/containers/${id}/json`);
        if (r.status !== 200) return undefined;
        const status = (JSON.parse(r.body.toString("utf8")) as { State?: { Health?: { Status?: string } } }).State?.Health?.Status;
        return status === "unhealthy" ? "unhealthy" : status === "healthy" ? "healthy" : undefined;
      },
    };
  }

  private async pull(image: string): Promise<void> {
    const at = image.lastIndexOf(":");
    const slash = image.lastIndexOf("/");
    const [from, tag] = at > slash ? [image.slice(0, at), image.slice(at + 1)] : [image, "latest"];
    const registry = from.split("/")[0]!;
    const auth = this.opts.registryAuth?.(registry);
    const headers = auth ? { "x-registry-auth": registryAuthHeader(auth, registry) } : undefined;
    const r = await this.call("POST", `/images/create?fromImage=${encodeURIComponent(from)}&tag=${encodeURIComponent(tag)}`, undefined, headers);
    if (r.status !== 200) throw engineError(`pull ${image}`, r);
    // The pull streams JSON progress objects; a failure mid-stream arrives as {"error": …} with status 200.
    for (const line of r.body.toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      const o = JSON.parse(line) as { error?: string };
      if (o.error) throw new Error(`pull ${image} failed: ${o.error}`);
    }
  }

  private call(method: string, path: string, body?: unknown, extraHeaders?: Record<string, string>): Promise<EngineResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request({
        socketPath: this.opts.socket, method, path: `/v${this.opts.apiVersion}${path}`,
        headers: { host: "docker", ...extraHeaders, ...(payload ? { "content-type": "application/json", "content-length": payload.length } : {}) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(payload);
    });
  }
}

/** Docker's `X-Registry-Auth`: base64url of the JSON AuthConfig, padded (Go's URLEncoding, which dockerd and podman decode, wants the padding). */
export function registryAuthHeader(auth: { username: string; password: string }, serveraddress: string): string {
  return Buffer.from(JSON.stringify({ username: auth.username, password: auth.password, serveraddress })).toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}

function engineError(what: string, r: EngineResponse): Error {
  let message = r.body.toString("utf8");
  try {
    message = (JSON.parse(message) as { message?: string }).message ?? message;
  } catch {
    // not JSON: keep the text
  }
  return new Error(`container ${what} failed (${r.status}): ${message}`);
}

/** Docker's multiplexed log stream: frames of [stream, 0, 0, 0, size(4, BE)] + payload; plain text when the container has a TTY. */
export function demuxLogs(buf: Buffer, max: number): string[] {
  const ring = new LineRing(max);
  let i = 0;
  const framed = buf.length >= 8 && buf[0]! <= 2 && buf[1] === 0 && buf[2] === 0 && buf[3] === 0;
  if (!framed) {
    ring.push(buf.toString("utf8"));
    return ring.tail();
  }
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    ring.push(buf.subarray(i + 8, i + 8 + size).toString("utf8"));
    i += 8 + size;
  }
  return ring.tail();
}
