import assert from "node:assert/strict";
import { test } from "node:test";
import { DEPLOYMENT_CODES, ManifestError, needsRestart, parseDeployment, withTtl } from "../../../plugins/agent/index.js";

const agent = (over: Record<string, unknown> = {}) => ({
  $version: 4,
  schemaVersion: "1.1",
  modules: { a: { type: "process", version: "1", status: "running", restartPolicy: "on-failure", settings: { command: "x" }, env: { K: { value: 3 } } } },
  ...over,
});

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ManifestError);
    return err.code;
  }
  return 200;
}

test("a schema 1.1 deployment is normalised: defaults, env values as strings, routes with the store-and-forward TTL", () => {
  const d = parseDeployment(agent(), {
    $version: 2, schemaVersion: "1.1",
    routes: { r1: "FROM /messages/* INTO $upstream", r2: { route: "FROM /messages/modules/a/outputs/* INTO $upstream", priority: 1, timeToLiveSecs: 60 } },
    storeAndForwardConfiguration: { timeToLiveSecs: 300 },
  });
  assert.equal(d.version, 4);
  assert.deepEqual(d.modules[0]!.env, { K: "3" });
  assert.equal(d.modules[0]!.imagePullPolicy, "on-create");
  assert.deepEqual(withTtl(d.routes, d.ttlSecs).map((r) => r.timeToLiveSecs), [300, 60]);
});

test("edgeAgent's codes: 417 no deployment, 412 schema version (agent and hub), 400 malformed fields and routes", () => {
  assert.equal(code(() => parseDeployment({ $version: 1 }, undefined)), DEPLOYMENT_CODES.empty);
  assert.equal(code(() => parseDeployment(agent({ schemaVersion: "2.0" }), undefined)), 412);
  assert.equal(code(() => parseDeployment(agent(), { $version: 1, schemaVersion: "0.9", routes: {} })), 412);
  assert.equal(code(() => parseDeployment(agent({ schemaVersion: undefined }), undefined)), 400);
  assert.equal(code(() => parseDeployment(agent({ modules: { a: { type: "process", restartPolicy: "sometimes" } } }), undefined)), 400);
  assert.equal(code(() => parseDeployment(agent({ modules: { "bad name": { type: "process" } } }), undefined)), 400);
  assert.equal(code(() => parseDeployment(agent({ modules: { a: { type: "process", env: { K: "v" } } } }), undefined)), 400);
  assert.equal(code(() => parseDeployment(agent(), { $version: 1, schemaVersion: "1.1", routes: { r: "FROM /messages/* INTO nowhere(" } })), 400);
  assert.match((() => {
    try {
      parseDeployment(agent({ modules: { a: { type: "process", status: "paused" } } }), undefined);
    } catch (err) {
      return (err as Error).message;
    }
    return "";
  })(), /\$edgeAgent\.modules\.a\.status/);
});

test("a module is recreated when version, settings, env or type change, not for policy or status", () => {
  const [a] = parseDeployment(agent(), undefined).modules;
  assert.equal(needsRestart(a!, { ...a!, restartPolicy: "always", status: "stopped" }), false);
  assert.equal(needsRestart(a!, { ...a!, version: "2" }), true);
  assert.equal(needsRestart(a!, { ...a!, settings: { command: "y" } }), true);
  assert.equal(needsRestart(a!, { ...a!, env: {} }), true);
});
