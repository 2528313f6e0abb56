// Scope, auth chains (`leaf;gwL3;gwL2`) and on-behalf-of checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_CHAIN_LENGTH, type AuthResult, type Principal } from "../../../core/identity/index.js";
import { edge, makeRegistry, sasDevice, type RecordInput } from "./setup.js";

function refusal(r: AuthResult): string {
  assert.equal(r.ok, false, "expected a refusal");
  return r.ok ? "" : r.reason;
}

/** root ← L1 ← L2 ← L3 ← L4 ← L5 ← leaf (+ leaf/m, L2/modA, root/edgeHub), and a sibling branch root ← X1 ← leafX. */
function tree(overrides: Record<string, Partial<RecordInput>> = {}): RecordInput[] {
  const records = [
    edge("root"),
    edge("L1"), // no parent: attached directly to the root
    edge("L2", "L1"),
    edge("L3", "L2"),
    edge("L4", "L3"),
    edge("L5", "L4"),
    sasDevice("leaf", { parent: "L5" }),
    sasDevice("leaf/m"),
    sasDevice("L2/modA"),
    sasDevice("root/edgeHub"),
    edge("X1", "root"),
    sasDevice("leafX", { parent: "X1" }),
    sasDevice("plain", { parent: "L2" }),
    sasDevice("belowPlain", { parent: "plain" }),
  ];
  return records.map((r) => ({ ...r, ...overrides[r.id] }));
}

function actor(id: string, method: Principal["method"] = "sas"): Principal {
  return { id, deviceId: id, method, expiresAt: 2_000_000_000 };
}

// --- auth chains ----------------------------------------------------------------------------------------

test("authChain: five gateway layers up to the root", async () => {
  const { registry } = await makeRegistry(tree(), { self: "root" });
  assert.deepEqual(registry.authChain("leaf"), ["leaf", "L5", "L4", "L3", "L2", "L1", "root"]);
  assert.deepEqual(registry.authChain("L1"), ["L1", "root"]);
  assert.deepEqual(registry.authChain("leafX"), ["leafX", "X1", "root"]);
  assert.deepEqual(registry.authChain("root"), ["root"]);
  assert.equal(registry.inScope("leaf"), true);
});

test("authChain: modules go through their device", async () => {
  const { registry } = await makeRegistry(tree(), { self: "root" });
  assert.deepEqual(registry.authChain("leaf/m"), ["leaf/m", "leaf", "L5", "L4", "L3", "L2", "L1", "root"]);
  assert.deepEqual(registry.authChain("L2/modA"), ["L2/modA", "L2", "L1", "root"]);
  assert.deepEqual(registry.authChain("root/edgeHub"), ["root/edgeHub", "root"]);
});

test("authChain: on a middle gateway, only its subtree is in scope", async () => {
  const { registry } = await makeRegistry(tree(), { self: "L2" });
  assert.deepEqual(registry.authChain("leaf"), ["leaf", "L5", "L4", "L3", "L2"]);
  assert.deepEqual(registry.authChain("L2/modA"), ["L2/modA", "L2"]);
  assert.equal(registry.authChain("L1"), undefined, "its parent is above it");
  assert.equal(registry.authChain("leafX"), undefined, "a sibling branch");
  assert.equal(registry.authChain("root/edgeHub"), undefined);
  assert.equal(registry.inScope("leafX"), false);
  assert.equal(registry.inScope("L2"), true);
});

test("authChain: unknown identities and unknown parents are out of scope", async () => {
  const { registry } = await makeRegistry([edge("root"), sasDevice("orphan", { parent: "gone" })], { self: "root" });
  assert.equal(registry.authChain("ghost"), undefined);
  assert.equal(registry.authChain("orphan"), undefined);
  assert.equal(registry.inScope("ghost"), false);
});

test("authChain: a parent loop is caught, not followed", async () => {
  const { registry } = await makeRegistry([edge("root"), edge("a", "b"), edge("b", "a"), sasDevice("c", { parent: "a" })], { self: "root" });
  assert.equal(registry.authChain("a"), undefined);
  assert.equal(registry.authChain("c"), undefined);
  assert.equal(registry.inScope("b"), false);
});

test("authChain: chains longer than MAX_CHAIN_LENGTH are refused", async () => {
  const records = [edge("root"), edge("g0")];
  for (let i = 1; i <= MAX_CHAIN_LENGTH + 2; i++) records.push(edge(`g${i}`, `g${i - 1}`));
  const { registry } = await makeRegistry(records, { self: "root" });
  assert.equal(registry.authChain(`g${MAX_CHAIN_LENGTH - 2}`)?.length, MAX_CHAIN_LENGTH);
  assert.equal(registry.authChain(`g${MAX_CHAIN_LENGTH + 2}`), undefined);
});

// --- on-behalf-of -----------------------------------------------------------------------------------------

test("on-behalf-of: a child gateway acts for a leaf deep in its subtree", async () => {
  const { registry } = await makeRegistry(tree(), { self: "root" });
  const r = registry.verifyOnBehalfOf(actor("L2"), "leaf", ["leaf", "L5", "L4", "L3", "L2"]);
  assert.deepEqual(r, {
    ok: true,
    principal: {
      id: "leaf", deviceId: "leaf", method: "on-behalf-of", expiresAt: 2_000_000_000,
      actor: "L2", authChain: ["leaf", "L5", "L4", "L3", "L2"],
    },
  });
});

test("on-behalf-of: chain compared case-insensitively; modules and the direct parent work", async () => {
  const { registry } = await makeRegistry(tree(), { self: "root" });
  assert.equal(registry.verifyOnBehalfOf(actor("L2"), "leaf", ["LEAF", "l5", "L4", "l3", "L2"]).ok, true);
  const m = registry.verifyOnBehalfOf(actor("L5"), "leaf/m", ["leaf/m", "leaf", "L5"]);
  assert.equal(m.ok && m.principal.moduleId, "m");
  assert.equal(registry.verifyOnBehalfOf(actor("L2"), "L2/modA", ["L2/modA", "L2"]).ok, true);
  assert.equal(registry.verifyOnBehalfOf(actor("L1"), "L2", ["L2", "L1"]).ok, true);
});

test("on-behalf-of: forged chains are refused", async () => {
  const { registry } = await makeRegistry(tree(), { self: "root" });
  const cases: Array<[string[], string]> = [
    [["leaf", "L4", "L3", "L2"], "not-in-scope"], // skips L5
    [["leaf", "L5", "L4", "L3", "L2", "L1"], "wrong-identity"], // ends past the actor
    [["leaf", "L5", "L9", "L3", "L2"], "not-in-scope"],
    [["leaf", "L5", "L4", "L3", "L3", "L2"], "not-in-scope"],
    [["leafX", "L5", "L4", "L3", "L2"], "wrong-identity"], // starts with another target
    [["leaf", "L5", "L4", "L3"], "wrong-identity"], // does not end with the actor
    [[], "malformed"],
  ];
  for (const [chain, reason] of cases) {
    assert.equal(refusal(registry.verifyOnBehalfOf(actor("L2"), "leaf", chain)), reason, chain.join(";"));
  }
});

test("on-behalf-of: a target outside the actor's subtree is refused", async () => {
  const { registry } = await makeRegistry(tree(), { self: "root" });
  assert.equal(refusal(registry.verifyOnBehalfOf(actor("L2"), "leafX", ["leafX", "L2"])), "not-in-scope");
  assert.equal(refusal(registry.verifyOnBehalfOf(actor("L2"), "leafX", ["leafX", "X1", "L2"])), "not-in-scope");
  assert.equal(refusal(registry.verifyOnBehalfOf(actor("L3"), "L2/modA", ["L2/modA", "L3"])), "not-in-scope");
  assert.equal(refusal(registry.verifyOnBehalfOf(actor("L2"), "ghost", ["ghost", "L2"])), "unknown-identity");
});

test("on-behalf-of: the actor must be an enabled edge device authenticated by its own credential", async () => {
  const { registry } = await makeRegistry(tree({ L3: { status: "disabled" } }), { self: "root" });
  assert.equal(refusal(registry.verifyOnBehalfOf(actor("plain"), "belowPlain", ["belowPlain", "plain"])), "not-in-scope");
  assert.equal(refusal(registry.verifyOnBehalfOf(actor("L3"), "leaf", ["leaf", "L5", "L4", "L3"])), "disabled");
  assert.equal(refusal(registry.verifyOnBehalfOf(actor("ghost"), "leaf", ["leaf", "ghost"])), "unknown-identity");
  assert.equal(refusal(registry.verifyOnBehalfOf(actor("L4", "on-behalf-of"), "leaf", ["leaf", "L5", "L4"])), "wrong-identity");
  const moduleActor: Principal = { id: "L2/modA", deviceId: "L2", moduleId: "modA", method: "sas" };
  assert.equal(refusal(registry.verifyOnBehalfOf(moduleActor, "leaf", ["leaf", "L2/modA"])), "not-in-scope");
});

test("on-behalf-of: a disabled target, or a disabled gateway between target and actor, is refused", async () => {
  const { registry } = await makeRegistry(tree({ leaf: { status: "disabled" }, L4: { status: "disabled" } }), { self: "root" });
  const r = registry.verifyOnBehalfOf(actor("L5"), "leaf", ["leaf", "L5"]);
  assert.equal(refusal(r), "disabled");
  assert.match(r.ok ? "" : r.detail, /leaf is disabled/);
  const deeper = registry.verifyOnBehalfOf(actor("L2"), "L5", ["L5", "L4", "L3", "L2"]);
  assert.equal(refusal(deeper), "disabled");
  assert.match(deeper.ok ? "" : deeper.detail, /L4/);
});

test("on-behalf-of: revocation — disabling the target via put refuses it at once", async () => {
  const records = tree();
  const { registry } = await makeRegistry(records, { self: "root" });
  const chain = ["leaf", "L5", "L4", "L3", "L2"];
  assert.equal(registry.verifyOnBehalfOf(actor("L2"), "leaf", chain).ok, true);
  await registry.put({ ...records.find((r) => r.id === "leaf")!, status: "disabled" });
  assert.equal(refusal(registry.verifyOnBehalfOf(actor("L2"), "leaf", chain)), "disabled");
});
