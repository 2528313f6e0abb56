import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger, type GatewayState, type IdentityRecord, type Kv } from "../../../core/index.js";
import { AccessGuard, isLoopback, renderStatusPage, renderTree, renderTreeCheck, TreeStore } from "../../../plugins/metrics/index.js";

function memKv<V>(): Kv<V> {
  const m = new Map<string, V>();
  return {
    async get(k) { return m.get(k); },
    async put(k, v) { m.set(k, v); },
    async del(k) { m.delete(k); },
    async *entries() { for (const e of [...m].sort()) yield e; },
  };
}

function state(device: string, at: number, over: Partial<GatewayState> = {}): GatewayState {
  return {
    v: 1, device, at, root: device === "root", connected: 0, upstream: { depth: 0, oldestAgeMs: 0 }, queued: { depth: 0, oldestAgeMs: 0 },
    drainPerSec: 0, dropped: { ttl: 0, quota: 0, "dead-letter": 0 }, deadLettered: 0, usedBytes: 0, quotaBytes: 1, accepted: {}, ...over,
  };
}

const rec = (id: string, parent?: string): IdentityRecord => ({ id, deviceId: id, status: "enabled", auth: { type: "certificateAuthority" }, edge: true, generation: 1, updatedAt: 0, ...(parent ? { parent } : {}) });
const identities = {
  self: "root",
  list: () => [rec("a"), rec("b", "a"), rec("c"), { ...rec("leaf", "a"), edge: false }],
  authChain: (id: string) => ({ b: ["b", "a", "root"], a: ["a", "root"] } as Record<string, string[]>)[id],
};

test("the tree: depth first from the root, children counted, never-seen gateways shown, older states ignored", async () => {
  const tree = new TreeStore(memKv(), silentLogger());
  await tree.accept(state("b", 200, { link: { status: "connected", since: 0, reconnects: 0, failedAttempts: 0 }, upstream: { depth: 4, oldestAgeMs: 3000 } }), 1000);
  await tree.accept(state("b", 100), 1500); // older than the one held: ignored
  const view = tree.view(identities, state("root", 2000), 2000);
  assert.deepEqual(view.nodes.map((n) => [n.device, n.depth, n.children]), [["root", 0, 2], ["a", 1, 1], ["b", 2, 0], ["c", 1, 0]]);
  const text = renderTree(view).split("\n");
  assert.match(text[3]!, /^\s+└ b\s+connected\s+0\s+4\s+3 s\s+0\/s\s+1 s ago\s+-$/);
  assert.match(text[2]!, /^\s+└ a\s+unknown\s+1\s+-\s+-\s+-\s+never\s+-$/);
  const page = renderStatusPage(view);
  assert.match(page, /<tr data-device="b" data-depth="2" class="link-connected">/);
  // The whole-tree check fails while a gateway has never reported.
  assert.equal(renderTreeCheck(view).failed, true);
});

test("trace: watermarks tell which hop holds a message", async () => {
  const tree = new TreeStore(memKv(), silentLogger());
  await tree.accept(state("a", 10, { accepted: { b: 5 }, upstream: { depth: 2, oldestAgeMs: 4000 } }), 10);
  const t = tree.trace("b:7", identities, state("root", 20), undefined);
  assert.deepEqual(t.path.map((h) => [h.device, h.accepted]), [["b", true], ["a", false], ["root", false]]);
  assert.match(t.where, /^queued at b, not yet accepted by a/);
  const t2 = tree.trace("b:5", identities, state("root", 20), undefined);
  assert.match(t2.where, /^queued at a, not yet accepted by root: its \$upstream held 2 message\(s\), oldest 4 s$/);
  assert.match(tree.trace("b:5", identities, state("root", 20), 1234).where, /^reached the root root at 1970/);
  assert.equal(tree.trace("zz:1", identities, state("root", 20), undefined).path.length, 0);
  assert.match(tree.trace("garbage", identities, state("root", 20), undefined).where, /not a Strata id/);
});

test("access: loopback only in local mode, bearer in token mode, owner SAS in every mode", () => {
  assert.equal(isLoopback("127.0.0.9"), true);
  assert.equal(isLoopback("::ffff:127.0.0.1"), true);
  assert.equal(isLoopback("::1"), true);
  assert.equal(isLoopback("10.0.0.1"), false);
  const verify = { verifyService: (t: string) => (t.includes("good") ? { ok: true as const, principal: { id: "$policy:iothubowner", deviceId: "$policy:iothubowner", method: "sas" as const } } : { ok: false as const, reason: "bad-signature" as never, detail: "signature mismatch" }) };
  const req = (remoteAddress: string, authorization?: string) => ({ headers: authorization ? { authorization } : {}, socket: { remoteAddress } }) as never;
  const local = new AccessGuard("local", verify, undefined);
  assert.equal(local.check(req("127.0.0.1")).ok, true);
  const far = local.check(req("10.1.2.3"));
  assert.equal(far.ok, false);
  assert.equal(!far.ok && far.status, 403);
  assert.equal(local.check(req("10.1.2.3", "SharedAccessSignature good")).ok, true);
  assert.equal(local.check(req("127.0.0.1", "SharedAccessSignature bad")).ok, false, "a bad owner token is refused even from loopback");
  const token = new AccessGuard("token", verify, Buffer.from("tok"));
  assert.equal(token.check(req("10.1.2.3", "Bearer tok")).ok, true);
  assert.equal(token.check(req("10.1.2.3", "Bearer tok2")).ok, false);
  assert.equal(token.check(req("127.0.0.1")).ok, false);
});
