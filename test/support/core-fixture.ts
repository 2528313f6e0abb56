import { after, before } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CoreHub, HttpFront, IdentityRegistry, LevelStore, RouteTable, silentLogger, type IdentityRecord, type Logger,
} from "../../core/index.js";
import { ensureDevPki, type DevPki } from "../../core/pki/index.js";

/**
 * Real core services for a plugin's tests without a whole gateway: a store, identities, a dev PKI, and hubs and
 * HTTPS fronts (that never listen) made on demand — provided the way the gateway provides them. Registers the
 * node:test `before`/`after` hooks of the file that calls it.
 */
export interface CoreFixture {
  readonly dir: string;
  readonly logger: Logger;
  readonly store: LevelStore;
  /** Available once the file's `before` hooks ran (inside tests and `provide`). */
  readonly identities: IdentityRegistry;
  readonly pki: DevPki;
  hub(opts?: { self?: string; isRoot?: boolean }): CoreHub;
  front(): HttpFront;
}

export function coreFixture(prefix: string, self = "gw-root"): CoreFixture {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const logger = silentLogger();
  const store = new LevelStore({ path: join(dir, "store"), gatewayId: self, quotaBytes: 1 << 30, logger, sweepIntervalMs: 0 });
  let identities: IdentityRegistry | undefined;
  let pki: DevPki | undefined;
  before(async () => {
    await store.open();
    identities = new IdentityRegistry({ self, hubName: "hub", hostnames: [], kv: store.kv<IdentityRecord>("identities"), policies: [], logger });
    await identities.load();
    pki = await ensureDevPki(join(dir, "pki"), { hostnames: ["localhost"], ips: ["127.0.0.1"] });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ready = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`core fixture: ${what} is made in the file's before hook; use it inside tests`);
    return v;
  };
  return {
    dir,
    logger,
    store,
    get identities() { return ready(identities, "identities"); },
    get pki() { return ready(pki, "the dev PKI"); },
    hub: (o = {}) => new CoreHub({
      self: o.self ?? self, isRoot: o.isRoot ?? true, store, router: new RouteTable(), identities: ready(identities, "identities"), logger,
    }),
    front: () => {
      const p = ready(pki, "the dev PKI");
      return new HttpFront({ tls: { cert: p.server.chain, key: p.server.key }, port: 0, logger });
    },
  };
}
