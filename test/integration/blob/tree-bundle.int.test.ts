// A whole-tree support bundle from the root of a real-process tree (127.66.7.x:443): `strata support-bundle
// --tree` on the root calls UploadSupportBundle on every gateway, prints progress, and the root writes one
// index. The bundles of the running gateways reach Azurite under the mapped names, none holds a secret, and a
// gateway killed with -9 is listed as Failed with the reason within seconds.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { signSas } from "../../../core/index.js";
import type { TreeEntry } from "../../../plugins/blob/index.js";
import { buildTree, CLI, treeUnavailable, type Tree } from "../../support/tree.js";
import { AZURITE_KEY, startAzurite } from "./support.js";

const skip = treeUnavailable();

test("strata support-bundle --tree: every gateway's bundle in Azurite with an index, no secret in any, a killed gateway Failed with its reason", { skip }, async (t) => {
  const azurite = await startAzurite();
  t.after(() => azurite.stop());
  const secrets = mkdtempSync(join(tmpdir(), "strata-blob-tree-"));
  const key = randomBytes(64).toString("base64");
  writeFileSync(join(secrets, "blob.key"), key, { mode: 0o600 });
  writeFileSync(join(secrets, "cloud.cs"), azurite.connectionString(), { mode: 0o600 });
  // Below the top: no store; results go up the fronts to the top's blob plugin.
  const below = { "https-front": { blob: "parent" }, blob: { local_store: false, account_name: "edgelocal", account_key_file: join(secrets, "blob.key") } };
  const tree = await buildTree({
    subnet: "127.66.7",
    gateways: [
      { id: "top", plugins: { blob: { account_name: "edgelocal", account_key_file: join(secrets, "blob.key"), upload: { enabled: true, connection_string_file: join(secrets, "cloud.cs"), containers: { "strata-support": { target: "%h-support" } }, retry_min_ms: 100, retry_max_ms: 1000 } } } },
      { id: "mid", parent: "top", plugins: below },
      { id: "low", parent: "mid", plugins: below },
      { id: "gone", parent: "top", plugins: below },
    ],
  });
  t.after(() => tree.cleanup());
  await tree.startAll();

  // Each gateway's $edgeAgent identity is made at the root (as `strata child add` does) and reaches it by scope sync.
  for (const id of ["mid", "low", "gone"]) {
    const made = await service(tree, "PUT", `/devices/${id}/modules/${encodeURIComponent("$edgeAgent")}`, { deviceId: id, moduleId: "$edgeAgent" });
    assert.ok(made.status === 200 || made.status === 201, `${id}/$edgeAgent: ${made.status}`);
  }
  for (const id of ["top", "mid", "low", "gone"]) await reachable(tree, id);
  await tree.gw("gone").kill();
  await unreachable(tree, "gone");

  const started = Date.now();
  const run = await cli(["support-bundle", "--tree", "--timeout", "60", "--config", tree.root.configFile]);
  const secs = (Date.now() - started) / 1000;
  t.diagnostic(`support-bundle --tree: ${secs.toFixed(1)} s, exit ${run.code}\n${run.stdout}`);
  assert.equal(run.code, 1, `one gateway failed: exit 1 (stderr: ${run.stderr})`);
  assert.ok(secs < 50, "a dead gateway does not hold the run to its timeout");
  // Progress lines as each gateway finishes, then the index table.
  for (const id of ["top", "mid", "low"]) assert.match(run.stdout, new RegExp(`^\\[\\d/4\\] ${id} Completed strata-support/support-bundles/${id}/`, "m"));
  assert.match(run.stdout, /^\[\d\/4\] gone Failed .*not connected/m);
  const indexName = /^index: strata-support\/(support-trees\/\S+\.json) \(cloud: strata-tree-support\/support-trees\/\S+\)$/m.exec(run.stdout)?.[1];
  assert.ok(indexName, `an index line: ${run.stdout}`);

  // The index and every bundle reach Azurite (the top maps strata-support to <hub>-support).
  const cloud = azurite.client.getContainerClient(`${tree.hub}-support`);
  const index = JSON.parse((await eventually(() => cloud.getBlobClient(indexName).downloadToBuffer())).toString()) as { root: string; gateways: TreeEntry[] };
  assert.equal(index.root, "top");
  assert.deepEqual(index.gateways.map((g) => [g.gateway, g.parent ?? null, g.depth, g.status]), [
    ["top", null, 0, "Completed"], ["gone", "top", 1, "Failed"], ["mid", "top", 1, "Completed"], ["low", "mid", 2, "Completed"],
  ]);
  const gone = index.gateways.find((g) => g.gateway === "gone")!;
  assert.match(gone.message, /gone\/\$edgeAgent is not connected/);
  const texts: string[] = [JSON.stringify(index)];
  for (const g of index.gateways.filter((x) => x.status === "Completed")) {
    assert.equal(g.cloud, `${tree.hub}-support/${g.blob}`);
    const text = (await eventually(() => cloud.getBlobClient(g.blob!).downloadToBuffer())).toString();
    const bundle = JSON.parse(text) as { gateway: string; config: { device_id: string }; logs: string[] };
    assert.deepEqual([bundle.gateway, bundle.config.device_id], [g.gateway, g.gateway]);
    assert.ok(bundle.logs.length > 0, `${g.gateway}'s bundle has its recent logs`);
    texts.push(text);
  }

  // One gateway by name: its bundle goes up to the top's store.
  const single = await cli(["support-bundle", "mid", "--config", tree.root.configFile]);
  assert.equal(single.code, 0, single.stderr);
  assert.match(single.stdout, /^Completed: written to strata-support\/support-bundles\/mid\/\S+\.json at https:\/\/127\.66\.7\.1\/blob\/edgelocal/m);

  // No secret of any gateway in any of it: identity keys, the owner key, the blob account key, the cloud key,
  // TLS private keys; and no SAS signature or connection-string key that was not redacted.
  const secretValues: [string, string][] = [
    ["blob account key", key], ["Azurite key", AZURITE_KEY], ["owner key", readFileSync(join(tree.root.dir, "owner.key"), "utf8").trim()],
    ...[...tree.keys].map(([id, k]): [string, string] => [`${id}'s identity key`, k]),
    ...["top", "mid", "low"].map((id): [string, string] => [`${id}'s TLS key`, readFileSync(join(tree.gw(id).dir, "server.key.pem"), "utf8").split("\n")[1]!]),
  ];
  for (const text of texts) {
    for (const [what, value] of secretValues) assert.equal(text.includes(value), false, `${what} leaked`);
    assert.equal(/sig=(?!\[redacted\])[^&\s"]+/.test(text), false, "a SAS signature leaked");
    assert.equal(/(SharedAccessKey|AccountKey)=(?!\[redacted\])[^;\s"]+/.test(text), false, "a connection-string key leaked");
  }
});

/** The root's service API with an iothubowner token. */
function service(tree: Tree, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const ownerKey = readFileSync(join(tree.root.dir, "owner.key"), "utf8").trim();
  const token = signSas({ resource: tree.hub, key: ownerKey, expirySecs: Math.floor(Date.now() / 1000) + 600, keyName: "iothubowner" });
  const text = body === undefined ? "" : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: tree.root.address, port: 443, ca: tree.caPem, method, path: `${path}?api-version=2021-04-12`,
      headers: { authorization: token, "content-type": "application/json", "content-length": Buffer.byteLength(text) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const raw = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, json: raw ? (JSON.parse(raw) as Record<string, unknown>) : {} });
      });
    });
    req.on("error", reject);
    req.end(text);
  });
}

/** GetTaskStatus of a task nobody has: 200 from the gateway's own $edgeAgent once its link is up to the root. */
async function reachable(tree: Tree, id: string): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    const r = await service(tree, "POST", `/twins/${id}/modules/${encodeURIComponent("$edgeAgent")}/methods`, { methodName: "GetTaskStatus", payload: { correlationId: "probe" }, responseTimeoutInSeconds: 5 });
    if (r.status === 200) return;
    if (Date.now() > until) throw new Error(`${id}/$edgeAgent not reachable from the root: ${r.status} ${JSON.stringify(r.json)}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** Waits until the root no longer reaches `id` (its link gone with the process). */
async function unreachable(tree: Tree, id: string): Promise<void> {
  const until = Date.now() + 15_000;
  for (;;) {
    const r = await service(tree, "POST", `/twins/${id}/modules/${encodeURIComponent("$edgeAgent")}/methods`, { methodName: "GetTaskStatus", payload: { correlationId: "probe" }, responseTimeoutInSeconds: 2 });
    if (r.status !== 200) return;
    if (Date.now() > until) throw new Error(`${id} still answers after it was killed`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** Retries `fn` while the upload to Azurite may still be on its way. */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((res) => setTimeout(res, 250));
    }
  }
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout!.on("data", (d) => (stdout += String(d)));
    proc.stderr!.on("data", (d) => (stderr += String(d)));
    proc.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
