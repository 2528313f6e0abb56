// Who may hand states to a parent (POST /$strata/metrics/states): a child gateway directly below it, with
// its own SAS token, for itself and its subtree only.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AuthResult, GatewayState, IdentityRecord } from "../../../core/index.js";
import { checkStates } from "../../../plugins/metrics/index.js";

const rec = (id: string, parent?: string, edge = true): IdentityRecord => ({ id, deviceId: id, status: "enabled", auth: { type: "certificateAuthority" }, edge, generation: 1, updatedAt: 0, ...(parent ? { parent } : {}) });
const records = new Map([["gw3", rec("gw3", "gw2")], ["gw4", rec("gw4", "gw3")], ["other", rec("other", "gw2")], ["deep", rec("deep", "gw4")], ["leaf", rec("leaf", "gw2", false)]]);
const chains: Record<string, string[]> = { gw3: ["gw3", "gw2"], gw4: ["gw4", "gw3", "gw2"], deep: ["deep", "gw4", "gw3", "gw2"], other: ["other", "gw2"] };
const identities = {
  self: "gw2",
  get: (id: string) => records.get(id),
  authChain: (id: string) => chains[id],
  verifySas: (id: string, token: string): AuthResult => (token === `good-${id}` ? { ok: true, principal: { id, deviceId: id, method: "sas" } } : { ok: false, reason: "bad-signature", detail: "signature mismatch" }),
};
const state = (device: string): GatewayState => ({
  v: 1, device, at: 1, root: false, connected: 0, upstream: { depth: 0, oldestAgeMs: 0 }, queued: { depth: 0, oldestAgeMs: 0 },
  drainPerSec: 0, dropped: { ttl: 0, quota: 0, "dead-letter": 0 }, deadLettered: 0, usedBytes: 0, quotaBytes: 1, accepted: {},
});

test("a child's states are taken for itself and its subtree; anything else is refused with the reason", () => {
  const ok = checkStates(identities, "gw3", "good-gw3", [state("gw3"), state("gw4"), state("deep")]);
  assert.equal(ok.ok, true);
  assert.deepEqual(ok.ok && ok.states.map((s) => s.device), ["gw3", "gw4", "deep"]);
  const refused = (device: string | undefined, token: string | undefined, body: unknown) => {
    const v = checkStates(identities, device, token, body);
    return v.ok ? "taken" : `${v.status} ${v.reason}`;
  };
  assert.match(refused("gw3", "bad", [state("gw3")]), /^401 token refused: signature mismatch/);
  assert.match(refused(undefined, undefined, []), /^401 send \?device=/);
  assert.match(refused("gw4", "good-gw4", [state("gw4")]), /^403 gw4 is not a gateway directly below gw2/);
  assert.match(refused("leaf", "good-leaf", [state("leaf")]), /^403 leaf is not a gateway/);
  assert.match(refused("gw3", "good-gw3", [state("other")]), /^403 other is not in gw3's subtree/);
  assert.match(refused("gw3", "good-gw3", { v: 1 }), /^400 the body must be a JSON array/);
  assert.match(refused("gw3", "good-gw3", [{ device: "gw3" }]), /^400 a state is not a version-1 gateway state/);
});
