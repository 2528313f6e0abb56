import { test } from "node:test";
import assert from "node:assert/strict";
import { runTreeBundle, treeGateways, type TreeEntry } from "../../../plugins/blob/tree-bundle.js";

test("the tree from the registry: edge devices under their parents, depth first; modules and leaves left out; unknown parents under the root", () => {
  const rec = (id: string, edge: boolean, parent?: string, moduleId?: string) => ({ id, edge, ...(parent ? { parent } : {}), ...(moduleId ? { moduleId } : {}) });
  const identities = {
    self: "root",
    list: () => [rec("root", true), rec("b", true, "root"), rec("a", true, "root"), rec("a1", true, "a"), rec("leaf", false, "a"), rec("a/$edgeAgent", false, "a", "$edgeAgent"), rec("orphan", true, "gone")],
  };
  assert.deepEqual(treeGateways(identities as never), [
    { gateway: "root", depth: 0 },
    { gateway: "a", parent: "root", depth: 1 },
    { gateway: "a1", parent: "a", depth: 2 },
    { gateway: "b", parent: "root", depth: 1 },
    { gateway: "orphan", parent: "root", depth: 1 },
  ]);
});

test("runTreeBundle: Completed after polls, not connected at once, a task that never finishes and a gateway that never answers both fail by the deadline", async () => {
  // A stand-in hub (named as such): the real one cannot be made to never settle, which is what the guard is for.
  const polls = new Map<string, number>();
  const fakeHub = {
    invokeMethod: async (id: string, req: { methodName: string }): Promise<{ status: number; payload: unknown }> => {
      const gw = id.split("/")[0]!;
      if (gw === "down") return { status: 404, payload: { message: `${id} is not connected` } };
      if (gw === "mute") return new Promise(() => undefined);
      if (req.methodName === "UploadSupportBundle") return { status: 200, payload: { status: "NotStarted", correlationId: `t-${gw}` } };
      const n = (polls.get(gw) ?? 0) + 1;
      polls.set(gw, n);
      if (gw === "ok" && n >= 2) return { status: 200, payload: { status: "Completed", message: "done", container: "c", blob: "b/ok.json", stored: "parent" } };
      return { status: 200, payload: { status: "Running", message: "" } };
    },
  };
  const entries = ["ok", "down", "slow", "mute"].map((gateway, i) => ({ gateway, depth: i === 0 ? 0 : 1, status: "NotStarted" as const, message: "" }));
  const started = Date.now();
  await runTreeBundle(entries as TreeEntry[], {
    identities: { self: "ok", list: () => [], get: () => undefined } as never, hub: fakeHub as never,
    cloudName: (c, b) => `cloud-${c}/${b}`, timeoutSecs: 1, pollMs: 20, signal: new AbortController().signal,
  });
  const by = Object.fromEntries(entries.map((e) => [e.gateway, e as TreeEntry]));
  assert.deepEqual([by["ok"]!.status, by["ok"]!.cloud], ["Completed", "cloud-c/b/ok.json"]);
  assert.equal(by["down"]!.status, "Failed");
  assert.match(by["down"]!.message, /not connected; there is no identity down\/\$edgeAgent at the root/);
  assert.equal(by["slow"]!.status, "Failed");
  assert.match(by["slow"]!.message, /no result within 1 s/);
  assert.equal(by["mute"]!.status, "Failed");
  assert.match(by["mute"]!.message, /did not answer UploadSupportBundle within 1 s/);
  assert.ok(Date.now() - started < 6000, "bounded by the deadline and the guard");
});
