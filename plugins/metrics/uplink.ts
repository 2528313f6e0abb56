import { readFileSync } from "node:fs";
import https from "node:https";
import { isIP } from "node:net";
import {
  readSecret, signSas, StrataError, type GatewayState, type Identities, type StrataConfig,
} from "../../core/index.js";

/** Where a parent's metrics plugin takes the states of a child's subtree (POST, the child's SAS token). */
export const STATES_PATH = "/$strata/metrics/states";

/**
 * Why states do not ride the telemetry queue: a parent at its store quota holds the child's deliveries
 * unsettled (back-pressure), and the child's drain waits for the whole batch, so a state queued behind them
 * would stay there exactly while the tree most needs to see it. A small HTTPS POST per report interval
 * to the parent's front (the one open port between layers, as the registry cache uses) never waits on it.
 */
export function postStates(config: StrataConfig, states: readonly GatewayState[]): Promise<void> {
  const parent = config.parent;
  if (!parent || !config.identity) return Promise.resolve();
  const key = readSecret(config.identity.key_file, "identity.key_file");
  const token = signSas({ resource: `${config.hub}/devices/${config.device_id}`, key, expirySecs: Math.floor(Date.now() / 1000) + 300 });
  const body = Buffer.from(JSON.stringify(states));
  const ca = readFileSync(config.tls.ca_file, "utf8");
  return new Promise((resolve, reject) => {
    const req = https.request({
      method: "POST", host: parent.address ?? parent.hostname, port: parent.https_port,
      path: `${STATES_PATH}?device=${encodeURIComponent(config.device_id)}`, ca, servername: isIP(parent.hostname) ? undefined : parent.hostname,
      headers: { authorization: token, "content-type": "application/json", "content-length": body.length }, timeout: 10_000,
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { if (text.length < 500) text += c; });
      res.on("end", () => (res.statusCode === 204 ? resolve() : reject(new StrataError("STRATA_METRICS_PARENT_ANSWER", `the parent answered ${res.statusCode} to POST ${STATES_PATH}: ${text}; is [plugins.metrics] enabled on it?`))));
    });
    req.once("timeout", () => req.destroy(new Error("timed out after 10 s")));
    req.once("error", reject);
    req.end(body);
  });
}

export type StatesVerdict = { ok: true; child: string; states: GatewayState[] } | { ok: false; status: 400 | 401 | 403; reason: string };

/**
 * A child's POST: its SAS token must verify for `device`, an edge identity directly below this gateway,
 * and every state must be of that child or of a gateway in its subtree.
 */
export function checkStates(identities: Pick<Identities, "self" | "get" | "verifySas" | "authChain">, device: string | undefined, token: string | undefined, body: unknown): StatesVerdict {
  if (!device || !token) return { ok: false, status: 401, reason: "send ?device=<child id> and its SAS token in Authorization" };
  const auth = identities.verifySas(device, token);
  if (!auth.ok) return { ok: false, status: 401, reason: `token refused: ${auth.detail}` };
  const record = identities.get(device);
  if (!record?.edge || (record.parent ?? identities.self) !== identities.self) {
    return { ok: false, status: 403, reason: `${device} is not a gateway directly below ${identities.self}` };
  }
  if (!Array.isArray(body)) return { ok: false, status: 400, reason: "the body must be a JSON array of gateway states" };
  const states: GatewayState[] = [];
  for (const s of body as Partial<GatewayState>[]) {
    if (s?.v !== 1 || typeof s.device !== "string" || typeof s.at !== "number") return { ok: false, status: 400, reason: "a state is not a version-1 gateway state (v, device, at)" };
    if (s.device !== device && !(identities.authChain(s.device) ?? []).includes(device)) {
      return { ok: false, status: 403, reason: `${s.device} is not in ${device}'s subtree` };
    }
    states.push(s as GatewayState);
  }
  return { ok: true, child: device, states };
}
