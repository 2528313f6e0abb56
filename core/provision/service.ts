// What the composition root wires: `POST /$strata/provision` on every gateway, enrollment groups on the root.
import type { StrataConfig } from "../config/schema.js";
import { readSecret } from "../config/secret.js";
import type { HttpFront } from "../http/front.js";
import type { IdentityRegistry } from "../identity/registry.js";
import type { Listeners } from "../listeners.js";
import type { Logger } from "../log.js";
import type { Pki } from "../pki/pki.js";
import { parentClient } from "../scope/service.js";
import type { Store } from "../store/types.js";
import { EnrollmentGroups } from "./enrollments.js";
import { ProvisionServer } from "./server.js";
import type { EnrollmentGroup } from "./types.js";

export interface ProvisionServiceOptions {
  config: StrataConfig;
  identities: IdentityRegistry;
  front: HttpFront;
  store: Pick<Store, "kv">;
  pki: Pick<Pki, "edgeCa" | "trustBundle">;
  listeners: Pick<Listeners, "get">;
  logger: Logger;
}

export class ProvisionService {
  private constructor(
    readonly server: ProvisionServer,
    /** The root's enrollment groups; undefined below the root. */
    readonly groups: EnrollmentGroups | undefined,
    private readonly close: () => void,
  ) {}

  /** Mounts the routes; call before the front listens. */
  static start(o: ProvisionServiceOptions): ProvisionService {
    const { config } = o;
    const selfKey = config.identity && !config.identity.cert_file ? readSecret(config.identity.key_file, "identity.key_file") : undefined;
    const client = selfKey !== undefined ? parentClient(config, selfKey) : undefined;
    const groups = config.parent === undefined ? new EnrollmentGroups(o.store.kv<EnrollmentGroup>("enrollment-groups")) : undefined;
    const server = new ProvisionServer({
      hub: config.hub,
      identities: o.identities,
      auth: {
        identities: o.identities,
        hubName: config.hub,
        hostnames: [...new Set([config.hostname, config.listen.address])],
        ...(selfKey !== undefined ? { selfKey } : {}),
        isRoot: config.parent === undefined,
      },
      ...(groups ? { groups } : {}),
      ...(client ? { parent: client } : {}),
      issuer: () => {
        const edgeCa = o.pki.edgeCa;
        const https = o.listeners.get("https");
        if (!edgeCa || !https) return undefined;
        const amqp = o.listeners.get("amqp");
        return { config, edgeCa, trustBundle: o.pki.trustBundle, httpsPort: https.port, ...(amqp ? { amqpPort: amqp.port } : {}) };
      },
      logger: o.logger,
    });
    server.mount(o.front);
    return new ProvisionService(server, groups, () => client?.close());
  }

  stop(): void {
    this.close();
  }
}
