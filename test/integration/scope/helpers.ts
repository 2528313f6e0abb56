// Waiting on identity changes (events, not sleeps) and requests to a gateway's `/$strata/*` routes.
import type { IdentityRegistry } from "../../../core/identity/index.js";
import { signSas } from "../../../core/identity/index.js";
import { GatewayClient } from "../../../core/scope/index.js";
import type { TestGateway } from "../../support/gateway.js";

/** Resolves once `check()` holds, re-checking on every identity change of `registry`; rejects after `timeoutMs`. */
export function waitForIdentities(registry: IdentityRegistry, check: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (check()) return resolve(0);
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const off = registry.on(() => {
      if (!check()) return;
      clearTimeout(timer);
      off();
      resolve(Date.now() - started);
    });
  });
}

/** A client of `tg`'s front authenticated as device `id` with `key`. */
export function clientAs(tg: TestGateway, id: string, key: string): GatewayClient {
  return new GatewayClient({
    host: tg.address,
    port: tg.port("https"),
    hostname: tg.gw.config.hostname,
    ca: tg.caPem,
    token: () => signSas({ resource: `${tg.hubName}/devices/${id}`, key, expirySecs: Math.floor(Date.now() / 1000) + 600 }),
  });
}

export function sasKey(registry: IdentityRegistry, id: string): string {
  const r = registry.get(id);
  if (!r || r.auth.type !== "sas") throw new Error(`${id} has no SAS record here`);
  return r.auth.primaryKey;
}

export function deviceToken(hub: string, id: string, key: string): string {
  return signSas({ resource: `${hub}/devices/${id}`, key, expirySecs: Math.floor(Date.now() / 1000) + 600 });
}
