// A deployment manifest applied at the root (IoT Hub's POST /devices/{id}/applyConfigurationContent) reaches a
// gateway three layers down (root ← gw1 ← gw2 ← gw3 on 127.77.12.x) as the desired properties of its
// `gw3/$edgeAgent` twin. gw3's agent starts two process modules written with azure-iot-device's
// ModuleClient.fromEnvironment(); they talk over the manifest's routes (sender → relay → $upstream) and the
// relay's telemetry reaches the root. Killing the sender restarts it and the root sees restartCount 1; a
// manifest with schema 9.9 is reported as 412 at the root and changes nothing.
import "reflect-metadata";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { buildTree, treeUnavailable, type Tree } from "../support/tree.js";
import { rootService, type RootService } from "./service.js";

const skip = treeUnavailable();
let tree: Tree;
let service: RootService;

before(async () => {
  if (skip) return;
  tree = await buildTree({
    subnet: "127.77.12",
    gateways: [
      { id: "root" },
      { id: "gw1", parent: "root" },
      { id: "gw2", parent: "gw1" },
      { id: "gw3", parent: "gw2", plugins: { mqtt: {}, agent: { backoff_min_ms: 200, backoff_max_ms: 1000, stop_grace_ms: 3000 } } },
    ],
  });
  await tree.startAll();
  service = rootService(tree);
});

after(async () => {
  await tree?.stopAll(); // SIGTERM: gw3's agent stops its modules
  await tree?.cleanup();
  for (const pid of moduleProcesses(undefined)) process.kill(pid, "SIGKILL"); // any a failed stop left behind
});

const modulesDir = join(__dirname, "..", "integration", "agent", "modules");
const script = (name: string): string => JSON.stringify([join(modulesDir, `${name}.js`)]);

function manifest(schemaVersion = "1.1", senderVersion = "1.0") {
  return {
    modulesContent: {
      $edgeAgent: {
        "properties.desired": {
          schemaVersion,
          runtime: { type: "docker", settings: { minDockerVersion: "v1.25" } },
          systemModules: { edgeAgent: { type: "docker", settings: { image: "mcr.microsoft.com/azureiotedge-agent:1.5" } }, edgeHub: { type: "docker", status: "running", restartPolicy: "always", settings: { image: "mcr.microsoft.com/azureiotedge-hub:1.5" } } },
          modules: {
            sender: { type: "process", version: senderVersion, status: "running", restartPolicy: "always", startupOrder: 2, settings: { command: process.execPath, args: script("sender") } },
            relay: { type: "process", version: "1.0", status: "running", restartPolicy: "on-failure", startupOrder: 1, settings: { command: process.execPath, args: script("relay") }, env: { GREETING: { value: "hello from the root" } } },
          },
        },
      },
      $edgeHub: {
        "properties.desired": {
          schemaVersion: "1.1",
          routes: {
            senderToRelay: "FROM /messages/modules/sender/outputs/out1 INTO BrokeredEndpoint(\"/modules/relay/inputs/in1\")",
            relayUp: "FROM /messages/modules/relay/outputs/* INTO $upstream",
          },
          storeAndForwardConfiguration: { timeToLiveSecs: 1200 },
        },
      },
    },
  };
}

/** Pids of this test's module processes (their script is under modulesDir), optionally only `name`'s. */
function moduleProcesses(name: string | undefined): number[] {
  const wanted = name ? [join(modulesDir, `${name}.js`)] : ["sender", "relay"].map((n) => join(modulesDir, `${n}.js`));
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv.some((a) => wanted.includes(a))) pids.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return pids;
}

/** The root's view of gw3's agent twin, polled until `ok` (reports travel up three hops). */
async function reportedAtRoot(ok: (reported: any) => boolean, withinMs = 30_000): Promise<any> {
  const deadline = Date.now() + withinMs;
  let reported: any;
  while (Date.now() < deadline) {
    const answer = await service.call("GET", `/twins/gw3/modules/${encodeURIComponent("$edgeAgent")}`);
    reported = (answer.body as any)?.properties?.reported;
    if (answer.status === 200 && ok(reported)) return reported;
    await new Promise((r) => setTimeout(r, 250)); // polling the root's twin
  }
  throw new Error(`the root's gw3/$edgeAgent reported never matched; last: ${JSON.stringify(reported)}`);
}

test("a manifest applied at the root runs two SDK modules three gateways down; routes, restart count and a refused schema are seen at the root", { skip }, async () => {
  try {
    await deployAndWatch();
  } catch (err) {
    // The bottom gateway's own account is what explains a failure here.
    (err as Error).message += `\ngw3 output:\n${tree.gw("gw3").lines.slice(-40).join("\n")}`;
    throw err;
  }
});

async function deployAndWatch(): Promise<void> {
  // 1. Apply at the root: it holds the manifest as gw3's agent twin and creates the module identities under gw3.
  const relayed = tree.followTelemetry((rs) => rs.some((r) => r.deviceId === "gw3" && r.moduleId === "relay" && r.properties["via"] === "relay"), 45_000);
  const applied = await service.call("POST", "/devices/gw3/applyConfigurationContent", manifest());
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  const modules = await service.call("GET", "/devices/gw3/modules");
  assert.deepEqual(((modules.body as { moduleId: string }[]).map((m) => m.moduleId)).filter((m) => !m.startsWith("$")).sort(), ["relay", "sender"]);

  // 2. sender → relay (route at gw3) → $upstream → three hops → the root's telemetry, with the manifest's env.
  const records = await relayed;
  const up = records.find((r) => r.moduleId === "relay" && r.properties["via"] === "relay")!;
  assert.equal(up.properties["greeting"], "hello from the root");
  assert.equal(up.properties["input"], "in1");
  assert.ok(JSON.parse(up.body).n >= 0);

  let reported = await reportedAtRoot((r) => r?.lastDesiredStatus?.code === 200
    && r.modules?.sender?.runtimeStatus === "running" && r.modules?.relay?.runtimeStatus === "running");
  assert.equal(reported.modules.sender.restartCount, 0);

  // 3. kill -9 the sender (restartPolicy always): gw3 restarts it, the root sees restartCount 1.
  const [pid] = moduleProcesses("sender");
  assert.ok(pid, "the sender runs on this machine");
  process.kill(pid, "SIGKILL");
  reported = await reportedAtRoot((r) => r?.modules?.sender?.restartCount === 1 && r.modules.sender.runtimeStatus === "running");
  assert.equal(reported.modules.sender.exitCode, 137);
  const [restarted] = moduleProcesses("sender");
  assert.ok(restarted && restarted !== pid, "a new sender process");

  // 4. Schema 9.9: 412 reported at the root; same processes, same module versions.
  const relayPids = moduleProcesses("relay");
  const refused = await service.call("POST", "/devices/gw3/applyConfigurationContent", manifest("9.9", "2.0"));
  assert.equal(refused.status, 200);
  reported = await reportedAtRoot((r) => r?.lastDesiredStatus?.code === 412);
  assert.match(reported.lastDesiredStatus.description, /schemaVersion "9\.9"/);
  assert.equal(reported.modules.sender.version, "1.0");
  assert.equal(reported.modules.sender.restartCount, 1);
  assert.deepEqual(moduleProcesses("sender"), [restarted]);
  assert.deepEqual(moduleProcesses("relay"), relayPids);
  // The routes still carry messages after the refusal.
  const mark = (await tree.telemetry()).length;
  await tree.followTelemetry((rs) => rs.slice(mark).some((r) => r.moduleId === "relay"), 15_000);
}
