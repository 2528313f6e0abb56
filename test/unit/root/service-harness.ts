// A root's core services for the service API tests: a real LevelStore (temp dir), IdentityRegistry with
// an iothubowner policy, RouteTable and CoreHub, and the plugin's routes on a bare fastify (inject(), no
// socket: the socket is not the point here).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from "fastify";
import {
  CoreHub, generateKey, IdentityRegistry, LevelStore, RouteTable, signSas, silentLogger,
  type AccessPolicy, type DeviceLink, type IdentityRecord, type MethodRequest, type MethodResult,
} from "../../../core/index.js";
import { serviceApi } from "../../../plugins/root/service/api.js";
import type { RegistryMeta } from "../../../plugins/root/service/devices.js";
import { DeviceRegistry } from "../../../plugins/root/service/registry.js";

export const HUB = "roothub.local";
export const SELF = "gw-root";

export interface Harness {
  app: FastifyInstance;
  hub: CoreHub;
  store: LevelStore;
  identities: IdentityRegistry;
  ownerKey: string;
  /** A service token of iothubowner (valid one hour unless told otherwise). */
  token(opts?: { key?: string; expirySecs?: number; keyName?: string }): string;
  request(method: string, url: string, body?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  running: { value: boolean };
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "strata-root-api-"));
  const logger = silentLogger();
  const store = new LevelStore({ path: join(dir, "store"), gatewayId: SELF, quotaBytes: 1 << 30, logger, sweepIntervalMs: 0 });
  await store.open();
  const ownerKey = generateKey();
  const policy: AccessPolicy = { name: "iothubowner", primaryKey: ownerKey, rights: ["RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"] };
  const identities = new IdentityRegistry({
    self: SELF, hubName: HUB, hostnames: ["localhost"], kv: store.kv<IdentityRecord>("identities"), policies: [policy], logger,
  });
  await identities.load();
  const router = new RouteTable();
  router.setRoutes([{ name: "upstream", route: "FROM /messages/* INTO $upstream" }]);
  const hub = new CoreHub({ self: SELF, isRoot: true, store, router, identities, logger });
  const registry = new DeviceRegistry(identities, hub, store.kv<RegistryMeta>("root.registry"));
  const running = { value: true };
  const app = Fastify();
  await app.register(serviceApi({ identities, hub, registry, logger, isRunning: () => running.value }));
  await app.ready();
  const token = (o: { key?: string; expirySecs?: number; keyName?: string } = {}): string =>
    signSas({ resource: HUB, key: o.key ?? ownerKey, expirySecs: o.expirySecs ?? Math.floor(Date.now() / 1000) + 3600, keyName: o.keyName ?? "iothubowner" });
  return {
    app, hub, store, identities, ownerKey, token, running,
    request(method, url, body, headers = {}) {
      const hasBody = body !== undefined;
      return app.inject({
        method: method as "GET",
        url,
        headers: {
          authorization: token(),
          ...(hasBody && !Buffer.isBuffer(body) ? { "content-type": "application/json; charset=utf-8" } : {}),
          ...headers,
        },
        ...(hasBody ? { payload: Buffer.isBuffer(body) ? body : JSON.stringify(body) } : {}),
      });
    },
    async close() {
      await app.close();
      await hub.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A device link without a protocol: answers methods with `answer` (named as the fake it is). */
export function fakeDeviceLink(id: string, answer: (req: MethodRequest, signal: AbortSignal) => Promise<MethodResult>): DeviceLink {
  return {
    principal: { id, deviceId: id, method: "sas" },
    head: "fake-test-link",
    accepts: (kind) => kind === "methods" || kind === "desired",
    deliverC2D: async () => "completed",
    deliverInput: async () => undefined,
    desiredPatch: () => undefined,
    invokeMethod: answer,
    close: () => undefined,
  };
}
