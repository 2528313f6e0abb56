import { createHmac } from "node:crypto";
import { chmod, chown, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

/** The workload API version the Azure SDKs call (azure-iot-device's WORKLOAD_API_VERSION). */
export const WORKLOAD_API_VERSION = "2018-06-28";
const MAX_BODY = 64 * 1024;

export interface WorkloadModule {
  moduleId: string;
  generationId: string;
}

export interface WorkloadApiOptions {
  /** Unix socket path the module's `IOTEDGE_WORKLOADURI` names. */
  socketPath: string;
  module: WorkloadModule;
  /** The module's current keys, read at each call (rotations apply at once); undefined when the identity is gone. */
  keys: () => { primary: string; secondary?: string } | undefined;
  /** PEM bundle of the CAs the module must trust to reach the gateway. */
  trustBundle: () => string;
}

/**
 * iotedged's workload API for ONE module, on a socket of its own (mode 0600, owned by the module's user):
 * whoever can open the socket is that module, so it signs only for that module and generation. The key stays
 * here; the module gets HMACs. `GET /trust-bundle`, `POST /modules/{m}/genid/{g}/sign`.
 */
export class WorkloadApi {
  private server: Server | undefined;

  constructor(private readonly opts: WorkloadApiOptions) {}

  /** The generation the module was started with (a re-created identity gets a new one). */
  setGeneration(generationId: string): void {
    this.opts.module.generationId = generationId;
  }

  get uri(): string {
    return `unix://${this.opts.socketPath}`;
  }

  async listen(): Promise<void> {
    await rm(this.opts.socketPath, { force: true });
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => send(res, 500, { message: (err as Error).message }));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.opts.socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    await chmod(this.opts.socketPath, 0o600);
  }

  /** Hands the socket to the user the module runs as. */
  async chown(uid: number, gid: number): Promise<void> {
    await chown(this.opts.socketPath, uid, gid);
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await rm(this.opts.socketPath, { force: true });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://workload");
    if (!url.searchParams.get("api-version")) return send(res, 400, { message: "api-version query parameter is missing" });
    if (req.method === "GET" && url.pathname === "/trust-bundle") return send(res, 200, { certificate: this.opts.trustBundle() });
    const sign = /^\/modules\/([^/]+)\/genid\/([^/]+)\/sign$/.exec(url.pathname);
    if (req.method === "POST" && sign) {
      const moduleId = decodeURIComponent(sign[1]!);
      const genId = decodeURIComponent(sign[2]!);
      if (moduleId !== this.opts.module.moduleId || genId !== this.opts.module.generationId) {
        return send(res, 404, { message: `this workload socket serves module ${this.opts.module.moduleId} generation ${this.opts.module.generationId} only` });
      }
      const body = await readJson(req);
      if (!body) return send(res, 400, { message: "body must be JSON {keyId, algo, data}" });
      const { keyId, algo, data } = body as { keyId?: unknown; algo?: unknown; data?: unknown };
      if (algo !== "HMACSHA256") return send(res, 400, { message: `algo ${String(algo)} is not supported; use HMACSHA256` });
      if (keyId !== "primary" && keyId !== "secondary") return send(res, 400, { message: "keyId must be primary or secondary" });
      if (typeof data !== "string") return send(res, 400, { message: "data must be base64" });
      const keys = this.opts.keys();
      const key = keyId === "primary" ? keys?.primary : keys?.secondary;
      if (!key) return send(res, 404, { message: `module ${moduleId} has no ${keyId} key on this gateway` });
      const digest = createHmac("sha256", Buffer.from(key, "base64")).update(Buffer.from(data, "base64")).digest("base64");
      return send(res, 200, { digest });
    }
    return send(res, 404, { message: `no workload api route ${req.method} ${url.pathname}` });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return undefined;
  }
}
