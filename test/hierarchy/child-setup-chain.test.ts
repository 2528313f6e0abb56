// Issue #6's chain set up as an operator does it: a root (strata pki init / issue-edge-ca / issue-server), then
// four layers each added by its parent with the real `strata child add` and installed with `strata child install`
// — no identity, key or certificate seeded by the test. Five gateways on 127.77.40.1–5 with the standard ports.
// Two leaves at the bottom (azure-iot-device over MQTT and AMQP), registered through the root's service API
// under the bottom gateway, send 1000 messages each; the root's telemetry log holds each exactly once.
import "reflect-metadata";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify as toToml } from "smol-toml";
import { deviceConnectionString, generateKey } from "../../core/identity/sas.js";
import { runCli, TreeGateway, treeUnavailable, type TelemetryLine, type Tree } from "../support/tree.js";
import { openLeaf, tally, type Leaf, type LeafTransport } from "./leaves.js";
import { rootService, type RootService } from "./service.js";

const skip = treeUnavailable();
const SUBNET = "127.77.40";
const HUB = "strata-child-setup";
const IDS = ["root", "gw1", "gw2", "gw3", "gw4"] as const;
type GwId = (typeof IDS)[number];
const BOTTOM: GwId = "gw4";
const PER_LEAF = 1000;
const LEAVES: { id: string; transport: LeafTransport }[] = [{ id: "leafM", transport: "mqtt" }, { id: "leafQ", transport: "amqp" }];

const address = (id: GwId) => `${SUBNET}.${IDS.indexOf(id) + 1}`;
const parentOf = (id: GwId): GwId | undefined => (id === "root" ? undefined : IDS[IDS.indexOf(id) - 1]);

let dir: string;
const configOf = (id: GwId) => join(dir, id, "strata.toml");
const gws = new Map<GwId, TreeGateway>();
let service: RootService;
let trust: string;
const leaves: Leaf[] = [];

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), "strata-child-setup-"));
  // The root, with the CLI's PKI commands: a hierarchy root CA, the root's edge CA, its server certificate.
  await runCli(["pki", "init", "--out", join(dir, "root-ca")]);
  await runCli(["pki", "issue-edge-ca", "root", "--ca-dir", join(dir, "root-ca"), "--out", join(dir, "root", "edge")]);
  trust = readFileSync(join(dir, "root-ca", "trust-bundle.pem"), "utf8");
  writeFileSync(join(dir, "root", "trust-bundle.pem"), trust);
  writeFileSync(join(dir, "root", "owner.key"), generateKey(), { mode: 0o600 });
  writeFileSync(configOf("root"), toToml({
    hub: HUB, device_id: "root", hostname: address("root"), data_dir: join(dir, "root", "data"),
    listen: { address: address("root") },
    tls: {
      ca_file: join(dir, "root", "trust-bundle.pem"), cert_file: join(dir, "root", "server.chain.pem"), key_file: join(dir, "root", "server.key.pem"),
      edge_ca_cert_file: join(dir, "root", "edge", "edge-ca.cert.pem"), edge_ca_key_file: join(dir, "root", "edge", "edge-ca.key.pem"),
    },
    service: { owner_key_file: join(dir, "root", "owner.key") },
  }));
  await runCli(["pki", "issue-server", "--config", configOf("root"), "--out", join(dir, "root")]);
  const root = new TreeGateway("root", address("root"), join(dir, "root"), configOf("root"), undefined);
  gws.set("root", root);
  await root.start();

  // Each layer: its parent (running) registers it at the root and writes the bundle; the child installs and starts.
  for (const id of IDS.slice(1)) {
    const parent = parentOf(id)!;
    const bundle = join(dir, `${id}.bundle.json`);
    await runCli(["child", "add", id, "--address", address(id), "--config", configOf(parent), "--out", bundle, "--data-dir", join(dir, id, "data")]);
    assert.equal(statSync(bundle).mode & 0o777, 0o600, `${id}'s bundle holds keys`);
    await runCli(["child", "install", bundle, "--dir", join(dir, id)]);
    const gw = new TreeGateway(id, address(id), join(dir, id), configOf(id), parent);
    gws.set(id, gw);
    await gw.start();
    await gw.waitUpstream();
  }
  service = rootService({ root: { dir: join(dir, "root"), address: address("root") }, hub: HUB, caPem: trust } as unknown as Tree);
});

after(async () => {
  for (const l of leaves) await l.close();
  for (const id of [...IDS].reverse()) await gws.get(id)?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens a leaf once its identity has come down four hops of scope sync to the bottom gateway. */
async function openWhenSynced(id: string, cs: string, transport: LeafTransport): Promise<Leaf> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await openLeaf(id, cs, transport, trust);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 300)); // scope sync is still bringing the identity down
    }
  }
}

test("strata child list on every parent shows its child with a connected link", { skip }, async () => {
  for (const id of IDS.slice(1)) {
    const parent = parentOf(id)!;
    const out = await runCli(["child", "list", "--config", configOf(parent)]);
    assert.match(out, new RegExp(`^${id}\\s+enabled\\s+link connected\\s+scope sync`, "m"), `child list on ${parent}:\n${out}`);
    assert.equal(out.trim().split("\n").length, 1, `${parent} has one child:\n${out}`);
  }
});

test("a 5-gateway chain set up only with child add/install carries 1000 messages per leaf (MQTT, AMQP) to the root, each exactly once", { skip }, async () => {
  for (const { id, transport } of LEAVES) {
    const created = await service.call("PUT", `/devices/${id}`, { deviceId: id, deviceScope: `ms-azure-iot-edge://${BOTTOM}` });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const key = (created.body as { authentication: { symmetricKey: { primaryKey: string } } }).authentication.symmetricKey.primaryKey;
    const cs = deviceConnectionString({ hub: HUB, deviceId: id, key, gatewayHostName: address(BOTTOM) });
    leaves.push(await openWhenSynced(id, cs, transport));
  }
  const started = Date.now();
  await Promise.all(leaves.map((l) => l.send(0, PER_LEAF, 10)));
  const records = await followRootTelemetry((r) => r.filter((x) => x.deviceId.startsWith("leaf")).length >= LEAVES.length * PER_LEAF, 60_000);
  const fromLeaves = records.filter((r) => LEAVES.some((l) => l.id === r.deviceId));
  const { seqs, counts, duplicates } = tally(fromLeaves);
  assert.deepEqual(duplicates, [], "no message twice at the root");
  for (const { id } of LEAVES) {
    assert.deepEqual([...seqs.get(id)!].sort((a, b) => a - b), Array.from({ length: PER_LEAF }, (_, i) => i), `${id}: every message, with its identity`);
    for (let n = 0; n < PER_LEAF; n++) assert.equal(counts.get(`${id}-${n}`), 1, `${id}-${n} once`);
  }
  assert.equal(fromLeaves.length, LEAVES.length * PER_LEAF);
  // A late duplicate would arrive after the count was reached: look once more after the chain has settled.
  await new Promise((r) => setTimeout(r, 1000));
  const again = (await rootTelemetry()).filter((r) => LEAVES.some((l) => l.id === r.deviceId));
  assert.deepEqual(tally(again).duplicates, []);
  assert.equal(again.length, LEAVES.length * PER_LEAF);
  console.log(`# ${LEAVES.length * PER_LEAF} messages over 4 hops in ${Date.now() - started} ms`);
});

async function rootTelemetry(): Promise<TelemetryLine[]> {
  const out = await runCli(["telemetry", "tail", "--json", "--config", configOf("root")]);
  return out.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as TelemetryLine);
}

/** Polls the root's telemetry log until `done` says so. */
async function followRootTelemetry(done: (records: TelemetryLine[]) => boolean, withinMs: number): Promise<TelemetryLine[]> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const records = await rootTelemetry();
    if (done(records)) return records;
    if (Date.now() > deadline) assert.fail(`the root has ${records.length} records after ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 500)); // the last hops are still forwarding
  }
}
