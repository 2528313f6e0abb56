// The root's service REST API (plugins/root) as a hierarchy test drives it across processes: HTTPS on the
// root's 443 with an iothubowner SAS token, as IoT Hub's service API is called.
import { request } from "node:https";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { signSas } from "../../core/identity/sas.js";
import type { Tree } from "../support/tree.js";

export interface ServiceAnswer {
  status: number;
  body: unknown;
}

export interface RootService {
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ServiceAnswer>;
  invokeMethod(id: string, methodName: string, payload: unknown, responseTimeoutInSeconds?: number): Promise<{ status: number; payload: unknown }>;
  /** Invokes until the device answers with something other than 404 (its links are still travelling up). */
  invokeWhenReachable(id: string, methodName: string, payload: unknown, withinMs?: number, responseTimeoutInSeconds?: number): Promise<{ status: number; payload: unknown }>;
  patchDesired(id: string, desired: Record<string, unknown>): Promise<ServiceAnswer>;
  getTwin(id: string): Promise<{ properties: { desired: Record<string, unknown>; reported: Record<string, unknown> } }>;
  sendC2D(id: string, body: string, headers?: Record<string, string>): Promise<ServiceAnswer>;
}

export function rootService(tree: Tree): RootService {
  const ownerKey = readFileSync(join(tree.root.dir, "owner.key"), "utf8").trim();
  const token = () => signSas({ resource: tree.hub, key: ownerKey, keyName: "iothubowner", expirySecs: Math.floor(Date.now() / 1000) + 600 });
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    new Promise<ServiceAnswer>((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
      const req = request({
        host: tree.root.address, port: 443, method, ca: tree.caPem,
        path: `${path}${path.includes("?") ? "&" : "?"}api-version=2021-04-12`,
        headers: {
          authorization: token(),
          ...(data ? { "content-type": "application/json", "content-length": String(data.length) } : {}),
          ...headers,
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on("error", reject);
      req.end(data);
    });
  const service: RootService = {
    call,
    async invokeMethod(id, methodName, payload, responseTimeoutInSeconds = 10) {
      const answer = await call("POST", `/twins/${encodeURIComponent(id)}/methods`, { methodName, payload, responseTimeoutInSeconds });
      if (answer.status !== 200) return { status: answer.status, payload: answer.body };
      return answer.body as { status: number; payload: unknown };
    },
    async invokeWhenReachable(id, methodName, payload, withinMs = 20_000, responseTimeoutInSeconds = 10) {
      const deadline = Date.now() + withinMs;
      for (;;) {
        const result = await service.invokeMethod(id, methodName, payload, responseTimeoutInSeconds);
        if (result.status !== 404 || Date.now() > deadline) return result;
        await new Promise((r) => setTimeout(r, 200)); // polling the root: the links travel up hop by hop
      }
    },
    patchDesired: (id, desired) => call("PATCH", `/twins/${encodeURIComponent(id)}`, { properties: { desired } }),
    async getTwin(id) {
      const answer = await call("GET", `/twins/${encodeURIComponent(id)}`);
      if (answer.status !== 200) throw new Error(`GET /twins/${id}: ${answer.status} ${JSON.stringify(answer.body)}`);
      return answer.body as { properties: { desired: Record<string, unknown>; reported: Record<string, unknown> } };
    },
    sendC2D: (id, body, headers = {}) => call("POST", `/devices/${encodeURIComponent(id)}/messages/deviceBound`, body, { "content-type": "text/plain", ...headers }),
  };
  return service;
}
