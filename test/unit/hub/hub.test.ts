import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { StrataError } from "../../../core/errors.js";
import { CoreHub } from "../../../core/hub/hub.js";
import type { C2DOutcome, DeliveryOutcome, DeviceLink, MethodRequest, MethodResult, TwinProperties } from "../../../core/hub/types.js";
import { IdentityRegistry } from "../../../core/identity/registry.js";
import { generateKey } from "../../../core/identity/sas.js";
import type { Principal } from "../../../core/identity/types.js";
import { silentLogger } from "../../../core/log.js";
import type { Message } from "../../../core/message.js";
import { RouteTable } from "../../../core/router/route-table.js";
import { LevelStore } from "../../../core/store/level-store.js";
import type { Lease } from "../../../core/store/types.js";

const SELF = "gw";

async function setup(t: TestContext, opts: { routes?: { name: string; route: string; priority?: number }[]; maxClients?: number; isRoot?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "strata-hub-"));
  const store = new LevelStore({ path: dir, gatewayId: SELF, quotaBytes: 1 << 30, logger: silentLogger(), sweepIntervalMs: 0 });
  await store.open();
  const identities = new IdentityRegistry({ self: SELF, hubName: "hub", hostnames: ["localhost"], kv: store.kv("identities"), logger: silentLogger() });
  await identities.load();
  const router = new RouteTable();
  router.setRoutes(opts.routes ?? [{ name: "up", route: "FROM /messages/* INTO $upstream" }]);
  const hub = new CoreHub({ self: SELF, isRoot: opts.isRoot ?? false, store, router, identities, logger: silentLogger(), maxClients: opts.maxClients });
  t.after(async () => {
    await hub.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const add = (id: string, extra: { moduleId?: string; deviceId?: string; edge?: boolean; parent?: string } = {}) =>
    identities.put({
      id, deviceId: extra.deviceId ?? id, ...(extra.moduleId ? { moduleId: extra.moduleId } : {}), status: "enabled",
      auth: { type: "sas", primaryKey: generateKey(), secondaryKey: generateKey() }, edge: extra.edge ?? false,
      ...(extra.parent ? { parent: extra.parent } : {}),
    });
  return { store, identities, router, hub, add };
}

function principal(id: string, method: Principal["method"] = "sas"): Principal {
  const [deviceId, moduleId] = id.split("/");
  return { id, deviceId: deviceId!, ...(moduleId ? { moduleId } : {}), method };
}

/** A scripted DeviceLink standing in for a head's connection: records what the hub hands it. */
class ScriptedLink implements DeviceLink {
  readonly inputs: { input: string; message: Message }[] = [];
  readonly c2d: Message[] = [];
  readonly patches: TwinProperties[] = [];
  closed: string | undefined;
  c2dOutcomes: C2DOutcome[] = [];
  methodAnswer: ((r: MethodRequest) => Promise<MethodResult>) | undefined;
  private waiters: (() => void)[] = [];
  constructor(readonly principal: Principal, readonly kinds: string[] = ["c2d", "inputs", "desired", "methods"]) {}
  readonly head = "scripted";
  accepts(kind: "c2d" | "inputs" | "desired" | "methods") { return this.kinds.includes(kind); }
  async deliverC2D(message: Message): Promise<C2DOutcome> {
    this.c2d.push(message);
    this.notify();
    return this.c2dOutcomes.shift() ?? "completed";
  }
  async deliverInput(input: string, message: Message): Promise<void> {
    this.inputs.push({ input, message });
    this.notify();
  }
  desiredPatch(patch: TwinProperties): void {
    this.patches.push(patch);
    this.notify();
  }
  invokeMethod(request: MethodRequest): Promise<MethodResult> {
    return this.methodAnswer ? this.methodAnswer(request) : new Promise(() => undefined);
  }
  close(reason: string): void {
    this.closed = reason;
    this.notify();
  }
  /** Resolves once `cond` holds, re-checked whenever the hub hands the link something. */
  async until(cond: () => boolean): Promise<void> {
    while (!cond()) await new Promise<void>((r) => this.waiters.push(r));
  }
  private notify() {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

const msg = (body: string, props: Record<string, string> = {}, sys: Record<string, string> = {}) => ({ body: Buffer.from(body), properties: props, systemProperties: sys });

test("ingest stamps a Strata id, the source and connection ids, routes and persists", async (t) => {
  const { hub, store } = await setup(t);
  const r = await hub.ingest(principal("d1"), msg("x", { a: "1" }, { messageId: "m1", connectionDeviceId: "forged" }));
  assert.match(r.id, /^gw:\d+$/);
  assert.deepEqual(r.endpoints, ["$upstream"]);
  const [lease] = await store.queue("$upstream").lease(1);
  assert.equal(lease!.message.source, "d1");
  assert.equal(lease!.message.systemProperties.connectionDeviceId, "d1", "a device cannot forge its connection id");
  assert.ok(lease!.message.deadline > lease!.message.enqueuedTime, "deadline set from the default TTL");
});

test("a message matching no route is counted as unrouted, not queued", async (t) => {
  const { hub } = await setup(t, { routes: [{ name: "only-alerts", route: "FROM /messages/* WHERE alert = 'yes' INTO $upstream" }] });
  const r = await hub.ingest(principal("d1"), msg("x"));
  assert.deepEqual(r.endpoints, []);
  assert.equal(hub.stats().unrouted, 1);
});

test("module output reaches another module's input through a route, in order", async (t) => {
  const { hub, add } = await setup(t, {
    routes: [{ name: "m2m", route: 'FROM /messages/modules/producer/outputs/out1 INTO BrokeredEndpoint("/modules/consumer/inputs/in1")' }],
  });
  await add(SELF, { edge: true });
  const consumer = new ScriptedLink(principal(`${SELF}/consumer`));
  hub.attach(consumer);
  for (let i = 0; i < 20; i++) await hub.ingest(principal(`${SELF}/producer`), msg(`m${i}`, {}, { outputName: "out1" }));
  await consumer.until(() => consumer.inputs.length === 20);
  assert.deepEqual(consumer.inputs.map((x) => x.message.body.toString()), Array.from({ length: 20 }, (_, i) => `m${i}`));
  assert.ok(consumer.inputs.every((x) => x.input === "in1"));
});

test("module input queued while the module is away is delivered when it attaches", async (t) => {
  const { hub } = await setup(t, {
    routes: [{ name: "m2m", route: 'FROM /messages/modules/producer/* INTO BrokeredEndpoint("/modules/consumer/inputs/in1")' }],
  });
  await hub.ingest(principal(`${SELF}/producer`), msg("early", {}, { outputName: "o" }));
  const consumer = new ScriptedLink(principal(`${SELF}/consumer`));
  hub.attach(consumer);
  await consumer.until(() => consumer.inputs.length === 1);
  assert.equal(consumer.inputs[0]!.message.body.toString(), "early");
});

test("C2D waits for the device; abandoned is retried, rejected is dead-lettered", async (t) => {
  const { hub, store } = await setup(t);
  await hub.sendC2D("d1", msg("first"));
  await hub.sendC2D("d1", msg("second"));
  const link = new ScriptedLink(principal("d1"));
  link.c2dOutcomes = ["abandoned", "rejected"];
  hub.attach(link);
  // first: abandoned then completed on retry; second: rejected.
  await link.until(() => link.c2d.filter((m) => m.body.toString() === "first").length === 2 && link.c2d.some((m) => m.body.toString() === "second"));
  const dead = await waitFor(async () => { const d = await store.deadLetters(); return d.length ? d : undefined; });
  assert.equal(dead.length, 1);
  assert.ok(dead.every((d) => /rejected/.test(d.reason)));
});

test("direct methods: 404 when not connected, the device's answer, 504 on timeout", async (t) => {
  const { hub } = await setup(t);
  const r404 = await hub.invokeMethod("d1", { methodName: "reboot", payload: {}, responseTimeoutInSeconds: 1 });
  assert.equal(r404.status, 404);
  const link = new ScriptedLink(principal("d1"));
  link.methodAnswer = async (r) => ({ status: 200, payload: { echo: r.payload } });
  hub.attach(link);
  const ok = await hub.invokeMethod("d1", { methodName: "echo", payload: { n: 1 }, responseTimeoutInSeconds: 5 });
  assert.deepEqual(ok, { status: 200, payload: { echo: { n: 1 } } });
  link.methodAnswer = undefined; // never answers
  const timeout = await hub.invokeMethod("d1", { methodName: "slow", payload: null, responseTimeoutInSeconds: 1 });
  assert.equal(timeout.status, 504);
  assert.equal(hub.stats().methodTimeouts, 1);
});

test("twins: reported versions increase, desired patches reach the device with $version, null deletes", async (t) => {
  const { hub } = await setup(t);
  const fresh = await hub.getTwin("d1");
  assert.deepEqual(fresh.properties, { desired: { $version: 1 }, reported: { $version: 1 } });
  assert.equal(await hub.patchReported("d1", { temp: 20, nested: { a: 1, b: 2 } }), 2);
  assert.equal(await hub.patchReported("d1", { nested: { b: null } }), 3);
  const link = new ScriptedLink(principal("d1"));
  hub.attach(link);
  const twin = await hub.patchDesired("d1", { interval: 5 });
  assert.equal(twin.properties.desired.$version, 2);
  await link.until(() => link.patches.length === 1);
  assert.deepEqual(link.patches[0], { interval: 5, $version: 2 });
  const after = await hub.getTwin("d1");
  assert.deepEqual(after.properties.reported, { temp: 20, nested: { a: 1 }, $version: 3 });
});

test("concurrent reported patches get distinct, increasing versions", async (t) => {
  const { hub } = await setup(t);
  const versions = await Promise.all(Array.from({ length: 20 }, (_, i) => hub.patchReported("d1", { [`k${i}`]: i })));
  assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 2));
  const twin = await hub.getTwin("d1");
  assert.equal(Object.keys(twin.properties.reported).length, 21);
});

test("max_clients counts identities served directly; a reconnect replaces the old link", async (t) => {
  const { hub } = await setup(t, { maxClients: 2 });
  const a = new ScriptedLink(principal("a"));
  hub.attach(a);
  hub.attach(new ScriptedLink(principal("b")));
  assert.throws(() => hub.attach(new ScriptedLink(principal("c"))), (e: Error & { code?: string }) => e.code === "STRATA_HUB_MAX_CLIENTS");
  // Behind a child gateway: not served directly, so not counted.
  hub.attach(new ScriptedLink({ ...principal("leaf"), method: "on-behalf-of", actor: "child" }));
  // Same identity again: replaces, never refused, and the old connection is closed.
  const a2 = new ScriptedLink(principal("a"));
  hub.attach(a2);
  assert.match(a.closed ?? "", /replaced/);
  assert.equal(hub.isConnected("a"), true);
});

test("disabling an identity disconnects it and the identities a child gateway serves for it", async (t) => {
  const { hub, add, identities } = await setup(t);
  await add("child", { edge: true });
  await add("leaf", { parent: "child" });
  const child = new ScriptedLink(principal("child"));
  const leaf = new ScriptedLink({ ...principal("leaf"), method: "on-behalf-of", actor: "child" });
  const other = new ScriptedLink(principal("other"));
  hub.attach(child);
  hub.attach(leaf);
  hub.attach(other);
  const rec = identities.get("child")!;
  await identities.put({ ...rec, status: "disabled" });
  assert.match(child.closed ?? "", /disabled/);
  assert.match(leaf.closed ?? "", /disabled/);
  assert.equal(other.closed, undefined);
  assert.equal(hub.isConnected("child"), false);
});

test("an endpoint consumer: delivered is acked, retry comes back first, a poison message is dead-lettered and does not block", async (t) => {
  const { hub, store } = await setup(t);
  for (const b of ["a", "poison", "c"]) await hub.ingest(principal("d1"), msg(b));
  const seen: string[] = [];
  let failedOnce = false;
  hub.consume("$upstream", {
    batchSize: 10,
    async deliver(leases: readonly Lease[]): Promise<DeliveryOutcome[]> {
      return leases.map((l) => {
        const b = l.message.body.toString();
        seen.push(b);
        if (b === "poison") return { deadLetter: "too large for the parent" };
        if (b === "c" && !failedOnce) { failedOnce = true; return "retry"; }
        return "delivered";
      });
    },
  });
  await waitFor(async () => (store.queue("$upstream").depth() === 0 ? true : undefined));
  assert.deepEqual(seen, ["a", "poison", "c", "c"]);
  const dead = await store.deadLetters();
  assert.equal(dead.length, 1);
  assert.equal(dead[0]!.message.body.toString(), "poison");
});

test("forward keeps the origin's id and deadline and drops a duplicate", async (t) => {
  const { hub, store } = await setup(t);
  const m: Message = {
    id: "child:7", origin: "child", source: "leaf", enqueuedTime: 1000, deadline: Date.now() + 60_000, priority: 0,
    body: Buffer.from("up"), properties: {}, systemProperties: { connectionDeviceId: "leaf" },
  };
  const p = { ...principal("leaf"), method: "on-behalf-of" as const, actor: "child" };
  assert.equal((await hub.forward(p, m)).duplicate, false);
  assert.equal((await hub.forward(p, m)).duplicate, true);
  const leases = await store.queue("$upstream").lease(10);
  assert.equal(leases.length, 1);
  assert.equal(leases[0]!.message.id, "child:7");
  assert.equal(leases[0]!.message.deadline, m.deadline);
  await assert.rejects(hub.forward(principal("other"), m), /claims source leaf/);
});

test("forwardGroups stores several sources' messages in one write, each under its source and in order; duplicates answered per message", async (t) => {
  const { hub, store } = await setup(t);
  const up = (id: string, source: string): Message => ({
    id, origin: "child", source, enqueuedTime: 1000, deadline: Date.now() + 60_000, priority: 0,
    body: Buffer.from(id), properties: {}, systemProperties: { connectionDeviceId: source },
  });
  const via = (id: string) => ({ ...principal(id), method: "on-behalf-of" as const, actor: "child" });
  await hub.forward(via("leafB"), up("child:1", "leafB"));
  const before = store.stats().appended;
  const results = await hub.forwardGroups([
    [via("leafA"), [up("child:2", "leafA"), up("child:3", "leafA")]],
    [via("leafB"), [up("child:1", "leafB"), up("child:4", "leafB")]],
  ]);
  assert.deepEqual(results.map((g) => g.map((r) => [r.id, r.duplicate])), [
    [["child:2", false], ["child:3", false]],
    [["child:1", true], ["child:4", false]],
  ]);
  assert.equal(store.stats().appended - before, 3);
  const leases = await store.queue("$upstream").lease(10);
  assert.deepEqual(leases.map((l) => [l.message.id, l.message.source]).sort(),
    [["child:1", "leafB"], ["child:2", "leafA"], ["child:3", "leafA"], ["child:4", "leafB"]]);
  assert.deepEqual(leases.filter((l) => l.message.source === "leafA").map((l) => l.message.id), ["child:2", "child:3"]);
  await assert.rejects(hub.forwardGroups([[via("leafA"), [up("child:9", "leafB")]]]), /child:9 claims source leafB but arrived for leafA/);
});

test("forwardGroups: when the store refuses, a message a handler took and that fails later leaves no unhandled rejection", async (t) => {
  const { hub, store } = await setup(t);
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  t.after(() => process.off("unhandledRejection", onUnhandled));
  hub.addForwardHandler({
    take: (_p, m) => (m.id === "child:1" ? new Promise((_, reject) => setTimeout(() => reject(new Error("handler failed")), 20)) : undefined),
  });
  // The store at its quota: the real refusal, without filling a gigabyte first.
  store.enqueueMany = async () => { throw new StrataError("STRATA_STORE_QUOTA", "store quota reached (test)"); };
  const up = (id: string): Message => ({
    id, origin: "child", source: "leaf", enqueuedTime: 1000, deadline: Date.now() + 60_000, priority: 0,
    body: Buffer.from(id), properties: {}, systemProperties: { connectionDeviceId: "leaf" },
  });
  const p = { ...principal("leaf"), method: "on-behalf-of" as const, actor: "child" };
  await assert.rejects(hub.forwardGroups([[p, [up("child:1"), up("child:2")]]]), /store quota reached/);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(unhandled, []);
});

test("at the root, $upstream fans out to every northbound sink", async (t) => {
  const { hub } = await setup(t, { isRoot: true });
  hub.addSink("log");
  hub.addSink("broker");
  const r = await hub.ingest(principal("d1"), msg("x"));
  assert.deepEqual(r.endpoints.sort(), ["sink:broker", "sink:log"]);
});

async function waitFor<T>(probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setImmediate(r));
  }
}

test("C2D feedback is queued on $feedback as the sender's ack asks (full: both, positive: success only)", async (t) => {
  const { hub, store } = await setup(t);
  await hub.sendC2D("d1", msg("a", {}, { messageId: "full-ok", ack: "full" }));
  await hub.sendC2D("d1", msg("b", {}, { messageId: "pos-rejected", ack: "positive" }));
  await hub.sendC2D("d1", msg("c", {}, { messageId: "none" }));
  await hub.sendC2D("d1", msg("d", {}, { messageId: "full-rejected", ack: "full" }));
  const link = new ScriptedLink(principal("d1"));
  link.c2dOutcomes = ["completed", "rejected", "completed", "rejected"];
  hub.attach(link);
  await link.until(() => link.c2d.length === 4);
  const records = await waitFor(async () => {
    const leases = await store.queue("$feedback").lease(10);
    if (leases.length < 2) { store.queue("$feedback").release(leases); return undefined; }
    return leases.map((l) => JSON.parse(l.message.body.toString()) as { originalMessageId: string; statusCode: string; deviceId: string });
  });
  assert.deepEqual(records.map((r) => [r.originalMessageId, r.statusCode, r.deviceId]), [["full-ok", "Success", "d1"], ["full-rejected", "Rejected", "d1"]]);
});

test("a paused hub holds ingest until markReady, then routes to the sinks registered meanwhile", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "strata-hub-"));
  const store = new LevelStore({ path: dir, gatewayId: SELF, quotaBytes: 1 << 30, logger: silentLogger(), sweepIntervalMs: 0 });
  await store.open();
  const identities = new IdentityRegistry({ self: SELF, hubName: "hub", hostnames: [], kv: store.kv("identities"), logger: silentLogger() });
  await identities.load();
  const router = new RouteTable();
  router.setRoutes([{ name: "up", route: "FROM /messages/* INTO $upstream" }]);
  const hub = new CoreHub({ self: SELF, isRoot: true, store, router, identities, logger: silentLogger(), startPaused: true });
  t.after(async () => { await hub.stop(); await store.close(); rmSync(dir, { recursive: true, force: true }); });
  let settled = false;
  const pending = hub.ingest(principal("d1"), msg("early")).then((r) => { settled = true; return r; });
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, "held while paused");
  hub.addSink("log");
  hub.markReady();
  assert.deepEqual((await pending).endpoints, ["sink:log"]);
});

test("removing an identity removes its twin: a re-created device starts fresh", async (t) => {
  const { hub, add, identities } = await setup(t);
  await add("d1");
  await hub.patchReported("d1", { a: 1 });
  await identities.remove("d1");
  await waitFor(async () => ((await hub.getTwin("d1")).properties.reported.$version === 1 ? true : undefined));
  assert.deepEqual((await hub.getTwin("d1")).properties.reported, { $version: 1 });
});
