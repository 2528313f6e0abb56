import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "../../../core/index.js";
import { ModuleSupervisor, ProcessRuntime, type ModuleSpec } from "../../../plugins/agent/index.js";

const runtime = new ProcessRuntime({ logLines: 50, inheritEnv: ["PATH"] });

function spec(code: string, over: Partial<ModuleSpec> = {}): ModuleSpec {
  return {
    name: "m", type: "process", version: "1", status: "running", restartPolicy: "on-failure", imagePullPolicy: "on-create", startupOrder: 0,
    settings: { command: process.execPath, args: JSON.stringify(["-e", code]) }, env: { GREETING: "hi" }, ...over,
  };
}

/** A supervisor whose state changes can be awaited. */
function supervise(s: ModuleSpec) {
  const waiters: { ok: () => boolean; resolve: () => void }[] = [];
  const sup: ModuleSupervisor = new ModuleSupervisor(s, {
    runtime, prepare: async () => ({ env: { IOTEDGE_MODULEID: "m", ...s.env }, workloadSocket: "/nonexistent" }),
    changed: () => {
      for (const w of [...waiters]) if (w.ok()) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    },
    logger: silentLogger(), backoffMinMs: 10, backoffMaxMs: 40, resetAfterMs: 60_000, stopGraceMs: 2000, healthIntervalMs: 1000,
  });
  const until = (ok: () => boolean) => (ok() ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ ok, resolve })));
  return { sup, until };
}

test("on-failure: a failing process is restarted with backoff and counted; env and output reach the module and its logs", async (t) => {
  const { sup, until } = supervise(spec("console.log('env', process.env.GREETING, process.env.IOTEDGE_MODULEID, process.env.HOME ?? 'nohome'); process.exit(3)"));
  t.after(() => sup.stop());
  sup.start();
  await until(() => sup.state.restartCount >= 2);
  assert.equal(sup.state.exitCode, 3);
  assert.ok(sup.logs().includes("env hi m nohome"), sup.logs().join("|"));
});

test("on-failure: a clean exit is stopped, not restarted; never: a failure is failed", async (t) => {
  const ok = supervise(spec("process.exit(0)"));
  t.after(() => ok.sup.stop());
  ok.sup.start();
  await ok.until(() => ok.sup.state.lastExitTimeUtc !== null && ok.sup.state.runtimeStatus === "stopped");
  assert.equal(ok.sup.state.restartCount, 0);
  const never = supervise(spec("process.exit(5)", { restartPolicy: "never" }));
  t.after(() => never.sup.stop());
  never.sup.start();
  await never.until(() => never.sup.state.runtimeStatus === "failed");
  assert.deepEqual([never.sup.state.exitCode, never.sup.state.restartCount], [5, 0]);
});

test("a missing program is reported (exit 127, backoff), a bad args setting is failed at once, stop ends a running process", async (t) => {
  const missing = supervise(spec("", { settings: { command: "/nonexistent/program" } }));
  t.after(() => missing.sup.stop());
  missing.sup.start();
  await missing.until(() => missing.sup.state.exitCode === 127 && missing.sup.state.runtimeStatus === "backoff");
  const bad = supervise(spec("", { settings: { command: "x", args: "not json" } }));
  bad.sup.start();
  assert.equal(bad.sup.state.runtimeStatus, "failed");
  assert.match(bad.sup.state.statusDescription, /settings\.args/);
  const long = supervise(spec("setInterval(() => {}, 1000)", { restartPolicy: "always" }));
  long.sup.start();
  await long.until(() => long.sup.state.runtimeStatus === "running");
  await long.sup.stop();
  assert.equal(long.sup.state.runtimeStatus, "stopped");
  assert.equal(long.sup.running, undefined);
});
