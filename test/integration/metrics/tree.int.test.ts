// A 5-gateway chain (root → gw2 → gw3 → gw4 → gw5), every one with the metrics plugin: each sends its state
// up on the reserved route, and the root shows the whole tree, traces a message, and runs the whole-tree check.
import assert from "node:assert/strict";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Writable } from "node:stream";
import type { PluginCommandContext, StrataConfig } from "../../../core/index.js";
import { traceCommand, treeCommand, type TraceView, type TreeView } from "../../../plugins/metrics/index.js";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";
import { eventually, expiredCertificate, get, metricsEntry, ownerToken } from "./helpers.js";

/** Runs a plugin command against the running root as the `strata` CLI would (its config, with the bound port). */
async function cli(root: TestGateway, command: typeof treeCommand, args: string[]): Promise<{ code: number; out: string }> {
  let out = "";
  const sink = new Writable({ write(chunk, _enc, done) { out += String(chunk); done(); } });
  const config: StrataConfig = { ...root.gw.config, listen: { ...root.gw.config.listen, https: root.port("https") } };
  const ctx: PluginCommandContext = { config, dataDir: root.dir, stdout: sink, stderr: sink, signal: new AbortController().signal };
  const code = await command.run(args, ctx);
  return { code, out };
}

describe("metrics: a 5-gateway chain seen from the root", () => {
  const chain: TestGateway[] = [];
  let root: TestGateway;
  let treeOf: () => Promise<TreeView>;

  before(async () => {
    root = await startTestGateway({ deviceId: "root", plugins: ["amqp"], extraPlugins: [metricsEntry()] });
    chain.push(root);
    // Every gateway is registered at the root under its parent; scope sync carries the keys down.
    const keys: string[] = [];
    for (let i = 2; i <= 5; i++) keys.push((await root.addDevice(`gw${i}`, { edge: true, ...(i > 2 ? { parent: `gw${i - 1}` } : {}) })).key);
    for (let i = 2; i <= 5; i++) {
      const parent = chain[chain.length - 1]!;
      const dir = (await import("node:fs")).mkdtempSync(join((await import("node:os")).tmpdir(), `strata-metrics-gw${i}-`));
      // gw4 gets its own copy of the server certificate, so the test can expire it on disk while it runs.
      const certFile = join(dir, "server.pem");
      copyFileSync(parent.gw.config.tls.cert_file, certFile);
      chain.push(await startTestGateway({
        deviceId: `gw${i}`, dir, plugins: i < 5 ? ["amqp"] : [],
        extraPlugins: [metricsEntry(i === 4 ? { check_interval_secs: 0.3 } : {})],
        parent: { gateway: parent, key: keys[i - 2]! },
        config: { tls: { ...parent.gw.config.tls, cert_file: certFile } },
      }));
    }
    treeOf = async () => JSON.parse((await get(root, "/$strata/metrics/tree", ownerToken(root))).body) as TreeView;
  });
  after(async () => {
    for (const g of [...chain].reverse()) await g.stop({ remove: true });
  });

  test("strata tree shows all 5 with their link, children, queue and last seen", async () => {
    // 1. Something waits at the root: it has no northbound sink, so gw5's message stays in its $upstream.
    const gw5 = chain[4]!;
    await gw5.gw.hub.ingest({ id: "gw5", deviceId: "gw5", method: "sas" }, { body: Buffer.from("hello"), properties: {}, systemProperties: {} });
    // 2. Every child has reported with its link up.
    const view = await eventually("all four children reported with their link connected and their clock", async () => {
      const v = await treeOf();
      return v.nodes.length === 5 && v.nodes.every((n) => n.depth === 0 || (n.state?.link?.status === "connected" && n.state.clock)) && (v.nodes[0]!.state?.upstream.depth ?? 0) > 0 ? v : undefined;
    });
    assert.deepEqual(view.nodes.map((n) => [n.device, n.depth, n.children, n.parent]), [
      ["root", 0, 1, undefined], ["gw2", 1, 1, "root"], ["gw3", 2, 1, "gw2"], ["gw4", 3, 1, "gw3"], ["gw5", 4, 0, "gw4"],
    ]);
    // 3. The state messages stayed out of the root's queue: the one message waiting is gw5's telemetry.
    assert.equal(view.nodes[0]!.state!.upstream.depth, 1);
    // 4. Each child measured its clock against its parent's metrics plugin (one machine: well under a second).
    for (const n of view.nodes.slice(1)) {
      assert.equal(n.state!.clock!.source, "strata", n.device);
      assert.ok(Math.abs(n.state!.clock!.offsetMs) < 1000, `${n.device}: ${JSON.stringify(n.state!.clock)}`);
    }
    assert.equal(view.nodes[0]!.state!.clock, undefined, "the root has no parent clock");
    const { code, out } = await cli(root, treeCommand, []);
    assert.equal(code, 0);
    const lines = out.trim().split("\n");
    assert.match(lines[0]!, /^GATEWAY\s+LINK\s+CHILDREN\s+QUEUE\s+OLDEST\s+DRAIN\s+LAST SEEN\s+CLOCK$/);
    assert.match(lines[1]!, /^root\s+root\s+1\s+1\s+/);
    assert.match(lines[5]!, /^\s+└ gw5\s+connected\s+0\s+\d+\s+.*ago\s+[+-]\d+ ms$/);
  });

  test("strata trace follows a message from gw5 to the root", async () => {
    const gw5 = chain[4]!;
    const { id } = await gw5.gw.hub.ingest({ id: "gw5", deviceId: "gw5", method: "sas" }, { body: Buffer.from("trace me"), properties: {}, systemProperties: {} });
    const trace = await eventually("every hop's watermark passed the message", async () => {
      const t = JSON.parse((await get(root, `/$strata/metrics/trace/${encodeURIComponent(id)}`, ownerToken(root))).body) as TraceView;
      return t.path.every((h) => h.accepted === true) ? t : undefined;
    });
    assert.deepEqual(trace.path.map((h) => h.device), ["gw5", "gw4", "gw3", "gw2", "root"]);
    assert.ok(trace.rootAcceptedAt! <= Date.now());
    assert.match(trace.where, /^reached the root root at /);
    const { code, out } = await cli(root, traceCommand, [id]);
    assert.equal(code, 0);
    assert.match(out, new RegExp(`^${id}: reached the root`));
    // A message that never left gw5 (id far ahead of its sequence) is reported as queued there.
    const ahead = JSON.parse((await get(root, `/$strata/metrics/trace/${encodeURIComponent("gw5:999999999")}`, ownerToken(root))).body) as TraceView;
    assert.match(ahead.where, /^queued at gw5, not yet accepted by gw4/);
  });

  test("strata tree --check reports gw4's expired certificate as a failure with its fix", async () => {
    writeFileSync(chain[3]!.gw.config.tls.cert_file, expiredCertificate());
    const view = await eventually("gw4's check saw the expired certificate", async () => {
      const v = await treeOf();
      const gw4 = v.nodes.find((n) => n.device === "gw4");
      return gw4?.state?.checks?.lines.some((l) => l.what === "certificate" && l.verdict === "fail") ? v : undefined;
    });
    assert.ok(view);
    const { code, out } = await cli(root, treeCommand, ["--check"]);
    assert.equal(code, 1, out);
    assert.match(out, /^gw4: fail/m);
    assert.match(out, /fail\s+certificate\s+server certificate expired on .*; issue a new server certificate/);
    assert.match(out, /^gw3: (ok|warn)/m);
    assert.match(out, /^ {2}ok {4}clock offset +[+-]\d+ ms from the parent \(±\d+ ms, measured/m);
  });
});
