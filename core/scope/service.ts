// What the composition root wires: the routes on every gateway, and on a child the sync client to its parent.
import { readFileSync } from "node:fs";
import type { StrataConfig } from "../config/schema.js";
import { readSecret } from "../config/secret.js";
import type { HttpFront } from "../http/front.js";
import type { Hub } from "../hub/types.js";
import type { IdentityRegistry } from "../identity/registry.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/types.js";
import { deviceTokenSigner, GatewayClient } from "./https-client.js";
import { ScopeServer } from "./server.js";
import { ScopeSync, type SyncCursor } from "./sync.js";

export interface ScopeServiceOptions {
  config: StrataConfig;
  identities: IdentityRegistry;
  hub: Pick<Hub, "isConnected">;
  front: HttpFront;
  store: Pick<Store, "kv" | "deadLetters" | "stats">;
  logger: Logger;
  /** Seconds a scope poll to the parent stays open. Default 25. */
  waitSecs?: number;
}

/** The client to `[parent]`'s HTTPS front, authenticated as this gateway (`[identity] key_file`). */
export function parentClient(config: StrataConfig, key: string): GatewayClient | undefined {
  const p = config.parent;
  if (!p) return undefined;
  return new GatewayClient({
    host: p.address ?? p.hostname,
    port: p.https_port,
    hostname: p.hostname,
    // Read per request: a trust bundle rewritten during a root CA rollover (docs/pki.md) must verify the
    // parent's re-issued certificate without a restart.
    ca: () => readFileSync(config.tls.ca_file, "utf8"),
    token: deviceTokenSigner(config.hub, config.device_id, key),
  });
}

/** Scope sync and registration forwarding for one gateway. */
export class ScopeService {
  private constructor(
    readonly server: ScopeServer,
    readonly sync: ScopeSync | undefined,
    private readonly client: GatewayClient | undefined,
  ) {}

  /** Mounts the routes (call before the front listens); on a child, starts syncing from the parent. */
  static async start(o: ScopeServiceOptions): Promise<ScopeService> {
    const { config } = o;
    const selfKey = config.identity ? readSecret(config.identity.key_file, "identity.key_file") : undefined;
    const client = selfKey !== undefined ? parentClient(config, selfKey) : undefined;
    const server = new ScopeServer({
      identities: o.identities,
      hub: o.hub,
      hubName: config.hub,
      hostnames: [...new Set([config.hostname, config.listen.address])],
      ...(selfKey !== undefined ? { selfKey } : {}),
      ...(client ? { parent: client } : {}),
      logger: o.logger,
      store: o.store,
    });
    server.mount(o.front);
    let sync: ScopeSync | undefined;
    if (client) {
      sync = new ScopeSync({
        client,
        identities: o.identities,
        kv: o.store.kv<SyncCursor>("scope-sync"),
        logger: o.logger,
        ...(o.waitSecs !== undefined ? { waitSecs: o.waitSecs } : {}),
      });
      await sync.start();
    }
    return new ScopeService(server, sync, client);
  }

  /** Ends open polls (both directions); call before the front closes and before the store closes. */
  async stop(): Promise<void> {
    this.server.close();
    await this.sync?.stop();
    this.client?.close();
  }
}
