import "reflect-metadata";
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import pino from "pino";
import { container, inject, injectable } from "tsyringe";
import { z } from "zod";
import { TOKENS } from "../../../core/tokens.js";
import { PluginError, StrataAggregateError, isStrataError } from "../../../core/errors.js";
import { PluginHost, type PluginEntry } from "../../../core/plugin/host.js";
import type { PluginModule } from "../../../core/plugin/api.js";
import { fakePlugin, untilAborted, type FakePlugin } from "./fake-plugins.js";

const entries = (...mods: PluginModule[]): PluginEntry[] => mods.map((module) => ({ module }));
const only = (events: string[], verb: string) => events.filter((e) => e.startsWith(`${verb} `)).map((e) => e.slice(verb.length + 1));

function captureLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: "info" }, dest), lines };
}

test("starts in dependency order and stops in reverse", async () => {
  const ev: string[] = [];
  const host = new PluginHost(container.createChildContainer(), entries(
    fakePlugin("c", ev, { dependsOn: ["b"] }),
    fakePlugin("a", ev),
    fakePlugin("b", ev, { dependsOn: ["a"] }),
  ));
  assert.deepEqual(host.order, ["a", "b", "c"]);
  const report = await host.start();
  assert.deepEqual(report.started, ["a", "b", "c"]);
  assert.deepEqual(only(ev, "started"), ["a", "b", "c"]);
  assert.equal(host.state("b"), "running");
  await host.stop();
  assert.deepEqual(only(ev, "stop"), ["c", "b", "a"]);
  await host.stop(); // idempotent
  assert.deepEqual(only(ev, "stop"), ["c", "b", "a"]);
});

test("manifests are checked before anything is constructed, errors name the plugin and the fix", () => {
  const ev: string[] = [];
  const parent = container.createChildContainer();
  assert.throws(() => new PluginHost(parent, entries(fakePlugin("a", ev, { dependsOn: ["ghost"] }))),
    (e: unknown) => isStrataError(e, "STRATA_PLUGIN_DEPENDENCY") && /plugin a: .*"ghost".*\[plugins\.ghost\]/.test((e as Error).message));
  assert.throws(() => new PluginHost(parent, entries(fakePlugin("a", ev, { dependsOn: ["b"] }), fakePlugin("b", ev, { dependsOn: ["a"] }))),
    (e: unknown) => isStrataError(e, "STRATA_PLUGIN_CYCLE") && /a -> b -> a/.test((e as Error).message));
  assert.throws(() => new PluginHost(parent, entries(fakePlugin("a", ev, { apiVersion: "^2" }))),
    (e: unknown) => isStrataError(e, "STRATA_PLUGIN_API_VERSION") && /plugin a: .*"\^2".*1\.0\.0/.test((e as Error).message));
  assert.throws(() => new PluginHost(parent, entries(fakePlugin("Bad Name", ev))), (e: unknown) => isStrataError(e, "STRATA_PLUGIN_MANIFEST"));
  assert.throws(() => new PluginHost(parent, entries(fakePlugin("a", ev), fakePlugin("a", ev))), (e: unknown) => isStrataError(e, "STRATA_PLUGIN_DUPLICATE"));
  // Several problems: one error listing each.
  assert.throws(() => new PluginHost(parent, entries(fakePlugin("a", ev, { apiVersion: "^2" }), fakePlugin("b", ev, { dependsOn: ["x"] }))),
    (e: unknown) => e instanceof StrataAggregateError && e.errors.length === 2 && /plugin a/.test(e.message) && /plugin b/.test(e.message));
  assert.deepEqual(ev, [], "nothing registered or constructed");
});

test("config sections: defaults applied, unknown keys and wrong types refused naming plugins.NAME.key", async () => {
  const ev: string[] = [];
  const schema = z.object({ port: z.int().min(0).max(65535).default(1883), name: z.string().default("x") });
  const mod = fakePlugin("mqtt", ev, { schema });
  const parent = container.createChildContainer();
  const host = new PluginHost(parent, [{ module: mod, settings: { port: 0 } }]);
  assert.deepEqual(host.configOf("mqtt"), { port: 0, name: "x" });
  await host.start();
  assert.equal(parent.isRegistered(TOKENS.Plugin, true), false, "the plugin lives in its own child container, not the parent");
  await host.stop();
  ev.length = 0;

  assert.throws(() => new PluginHost(parent, [{ module: mod, settings: { prot: 1 } }]),
    (e: unknown) => isStrataError(e, "STRATA_PLUGIN_CONFIG") && /plugins\.mqtt\.prot: unknown key/.test((e as Error).message));
  assert.throws(() => new PluginHost(parent, [{ module: mod, settings: { port: 70000, name: 3 } }]),
    (e: unknown) => e instanceof StrataAggregateError && /plugins\.mqtt\.port: must be <= 65535/.test(e.message) && /plugins\.mqtt\.name: must be a string/.test(e.message));
  assert.deepEqual(ev, [], "an invalid section stops the host before anything is constructed");
});

test("each plugin gets its config and a logger bound to its name at its own level", async () => {
  const ev: string[] = [];
  const { logger, lines } = captureLogger();
  const seen: Record<string, FakePlugin> = {};
  const mod = (name: string) => fakePlugin(name, ev, {
    schema: z.object({ n: z.number().default(0) }),
    start: (_s, self) => { seen[name] = self; self.log.debug({ n: 1 }, "debug line"); },
  });
  const host = new PluginHost(container.createChildContainer(), [
    { module: mod("quiet"), settings: { n: 1 } },
    { module: mod("loud"), settings: { n: 2 }, logLevel: "debug" },
  ], { logger });
  await host.start();
  await host.stop();
  assert.deepEqual(seen.quiet!.config, { n: 1 });
  assert.deepEqual(seen.loud!.config, { n: 2 });
  const debug = lines.filter((l) => l.msg === "debug line");
  assert.deepEqual(debug.map((l) => l.plugin), ["loud"]);
  assert.ok(lines.some((l) => l.msg === "plugin started" && l.plugin === "quiet"));
});

test("an optional plugin that fails is logged with its cause and skipped with its dependents", async () => {
  const ev: string[] = [];
  const { logger, lines } = captureLogger();
  const host = new PluginHost(container.createChildContainer(), entries(
    fakePlugin("a", ev),
    fakePlugin("b", ev, { dependsOn: ["a"], start: () => { throw new Error("port 1883 in use"); } }),
    fakePlugin("c", ev, { dependsOn: ["b"] }),
    fakePlugin("d", ev, { dependsOn: ["a"] }),
  ), { logger });
  const report = await host.start();
  assert.deepEqual(report.started, ["a", "d"]);
  assert.deepEqual(report.failed.map((f) => f.name), ["b"]);
  assert.match(report.failed[0]!.error.message, /plugin b: failed to start: port 1883 in use/);
  assert.deepEqual(report.skipped, [{ name: "c", reason: "dependency b is not running" }]);
  assert.equal(host.state("c"), "skipped");
  const logged = lines.find((l) => l.msg === "plugin failed to start");
  assert.equal(logged?.plugin, "b");
  assert.match(String((logged?.err as { message?: string })?.message), /port 1883 in use/);
  assert.ok(!ev.includes("construct c"), "a skipped plugin is never constructed");
  await host.stop();
  assert.deepEqual(only(ev, "stop"), ["b", "d", "a"], "the failed plugin got stop() to undo partial work; then reverse order");
});

test("an essential plugin that fails makes start reject after stopping what started", async () => {
  const ev: string[] = [];
  const host = new PluginHost(container.createChildContainer(), entries(
    fakePlugin("a", ev),
    fakePlugin("b", ev, { essential: true, dependsOn: ["a"], start: () => { throw new Error("no disk"); } }),
    fakePlugin("c", ev),
  ));
  await assert.rejects(host.start(), (e: unknown) => {
    assert.ok(e instanceof PluginError && e.code === "STRATA_PLUGIN_ESSENTIAL" && e.plugin === "b");
    assert.match((e.cause as Error).message, /no disk/);
    return true;
  });
  assert.ok(ev.includes("stop a"));
  assert.equal(host.state("a"), "stopped");
  assert.ok(!ev.includes("start c"), "nothing starts after an essential failure");
});

test("essential flag from the config entry overrides the manifest", async () => {
  const ev: string[] = [];
  const host = new PluginHost(container.createChildContainer(), [
    { module: fakePlugin("a", ev, { essential: true, start: () => { throw new Error("boom"); } }), essential: false },
  ]);
  const report = await host.start();
  assert.deepEqual(report.failed.map((f) => f.name), ["a"]);
});

test("a start that overruns its timeout has its signal aborted and fails by name", async () => {
  const ev: string[] = [];
  let signal: AbortSignal | undefined;
  const host = new PluginHost(container.createChildContainer(), entries(
    fakePlugin("slow", ev, { startTimeoutMs: 30, start: (s) => { signal = s; return untilAborted(s); } }),
    fakePlugin("deaf", ev, { startTimeoutMs: 30, start: () => new Promise(() => undefined) }),
    fakePlugin("after", ev),
  ));
  const report = await host.start();
  assert.equal(signal?.aborted, true);
  assert.deepEqual(report.failed.map((f) => [f.name, (f.error as PluginError).code]), [
    ["slow", "STRATA_PLUGIN_START_TIMEOUT"],
    ["deaf", "STRATA_PLUGIN_START_TIMEOUT"],
  ]);
  assert.match(report.failed[0]!.error.message, /plugin slow: start did not finish within 30 ms/);
  assert.deepEqual(report.started, ["after"]);
  await host.stop();
});

test("aborting the start signal stops what started and rejects", async () => {
  const ev: string[] = [];
  const ac = new AbortController();
  let bSignal: AbortSignal | undefined;
  const host = new PluginHost(container.createChildContainer(), entries(
    fakePlugin("a", ev),
    fakePlugin("b", ev, { start: (s) => { bSignal = s; queueMicrotask(() => ac.abort(new Error("SIGTERM"))); return untilAborted(s); } }),
    fakePlugin("c", ev),
  ));
  await assert.rejects(host.start(ac.signal), (e: unknown) => isStrataError(e, "STRATA_PLUGIN_START_ABORTED"));
  assert.equal(bSignal?.aborted, true);
  assert.deepEqual(only(ev, "stop"), ["b", "a"]);
  assert.ok(!ev.includes("start c"));
});

test("stop() during start aborts the start and stops what started", async () => {
  const ev: string[] = [];
  let entered!: () => void;
  const inB = new Promise<void>((r) => { entered = r; });
  const host = new PluginHost(container.createChildContainer(), entries(
    fakePlugin("a", ev),
    fakePlugin("b", ev, { start: (s) => { entered(); return untilAborted(s); } }),
  ));
  const starting = host.start();
  await inB;
  await host.stop();
  await assert.rejects(starting, (e: unknown) => isStrataError(e, "STRATA_PLUGIN_START_ABORTED"));
  assert.equal(host.state("a"), "stopped");
});

test("stop keeps going after failures and timeouts and reports them together by name", async () => {
  const ev: string[] = [];
  const host = new PluginHost(container.createChildContainer(), entries(
    fakePlugin("a", ev, { stop: () => { throw new Error("close failed"); } }),
    fakePlugin("b", ev, { stopTimeoutMs: 30, stop: () => new Promise(() => undefined) }),
    fakePlugin("c", ev),
  ));
  await host.start();
  await assert.rejects(host.stop(), (e: unknown) => {
    assert.ok(e instanceof StrataAggregateError && e.code === "STRATA_PLUGIN_STOP");
    assert.deepEqual(e.errors.map((x) => [(x as PluginError).plugin, (x as PluginError).code]), [
      ["b", "STRATA_PLUGIN_STOP_TIMEOUT"],
      ["a", "STRATA_PLUGIN_STOP"],
    ]);
    assert.match(e.message, /plugin a: failed to stop: close failed/);
    return true;
  });
  assert.deepEqual(only(ev, "stop"), ["c", "b", "a"]);
});

test("a plugin provides a token to the plugins that depend on it, without either importing the other", async () => {
  const ev: string[] = [];
  const CLOCK = Symbol.for("test.Clock");
  const provider = fakePlugin("clock", ev, {
    provides: [CLOCK],
    register: (scope) => scope.register(CLOCK, { useValue: { now: () => 42 } }),
  });
  let seen: number | undefined;
  @injectable()
  class Consumer {
    constructor(@inject(CLOCK) private readonly clock: { now(): number }) {}
    async start(): Promise<void> { seen = this.clock.now(); }
    async stop(): Promise<void> {}
  }
  const consumer: PluginModule = {
    manifest: { name: "consumer", apiVersion: "^1", configSchema: z.object({}), dependsOn: ["clock"] },
    register: (scope) => scope.register(TOKENS.Plugin, { useClass: Consumer }),
  };
  const parent = container.createChildContainer();
  const host = new PluginHost(parent, entries(consumer, provider));
  await host.start();
  assert.equal(seen, 42);
  await host.stop();
  assert.throws(() => parent.resolve(CLOCK), (e: unknown) => isStrataError(e, "STRATA_PLUGIN_PROVIDES") && /clock.*stopped/.test((e as Error).message));

  // Declared but not registered: the provider fails by name.
  const liar = fakePlugin("liar", ev, { provides: [Symbol.for("test.Nothing")] });
  const r = await new PluginHost(container.createChildContainer(), entries(liar)).start();
  assert.equal((r.failed[0]?.error as PluginError).code, "STRATA_PLUGIN_PROVIDES");
});
