import assert from "node:assert/strict";
import { EventEmitter, once } from "node:events";
import https from "node:https";
import { join } from "node:path";
import { test } from "node:test";
import { z } from "zod";
import {
  definePlugin, inject, injectable, signSas, sinkQueue, TOKENS,
  type DeliveryOutcome, type Hub, type Lease, type Plugin,
} from "../../../core/index.js";
import agentPlugin, { AgentPlugin } from "../../../plugins/agent/index.js";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";

// The SDK's MQTT transport dials 8883 on IOTEDGE_GATEWAYHOSTNAME: this gateway gets its own loopback address.
const ADDRESS = "127.0.0.151";
const SINK = "agentTestSink";

/** Records what reaches the root's $upstream (a northbound sink). */
const arrivals = new EventEmitter();
@injectable()
class RecordingSink implements Plugin {
  private un: (() => void) | undefined;
  constructor(@inject(TOKENS.Hub) private readonly hub: Hub) {}
  async start(): Promise<void> {
    this.hub.addSink(SINK);
    this.un = this.hub.consume(sinkQueue(SINK), {
      deliver: async (leases: readonly Lease[]): Promise<DeliveryOutcome[]> => {
        for (const l of leases) arrivals.emit("message", l.message);
        return leases.map(() => "delivered");
      },
    });
  }
  async stop(): Promise<void> {
    this.un?.();
  }
}
const sinkPlugin = definePlugin({
  manifest: { name: "recording-sink", apiVersion: "^1", configSchema: z.strictObject({}) },
  register: (scope) => scope.register(TOKENS.Plugin, { useClass: RecordingSink }),
});

function service(tg: TestGateway, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const token = signSas({ resource: tg.hubName, key: tg.ownerKey, expirySecs: Math.floor(Date.now() / 1000) + 600, keyName: "iothubowner" });
  const text = body === undefined ? "" : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: ADDRESS, port: tg.port("https"), ca: tg.caPem, method, path: `${path}?api-version=2021-04-12`,
      headers: { authorization: token, "content-type": "application/json", "content-length": Buffer.byteLength(text) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const raw = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, body: raw ? JSON.parse(raw) : undefined });
      });
    });
    req.on("error", reject);
    req.end(text);
  });
}

const script = (name: string): string => JSON.stringify([join(__dirname, "modules", `${name}.js`)]);

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
            relay: { type: "process", version: "1.0", status: "running", restartPolicy: "on-failure", startupOrder: 1, settings: { command: process.execPath, args: script("relay") }, env: { GREETING: { value: "hello from the manifest" } } },
          },
        },
      },
      $edgeHub: {
        "properties.desired": {
          schemaVersion: "1.1",
          routes: {
            senderToRelay: "FROM /messages/modules/sender/outputs/out1 INTO BrokeredEndpoint(\"/modules/relay/inputs/in1\")",
            relayUp: { route: "FROM /messages/modules/relay/outputs/* INTO $upstream", priority: 0, timeToLiveSecs: 600 },
          },
          storeAndForwardConfiguration: { timeToLiveSecs: 1200 },
        },
      },
    },
  };
}

/** Polls nothing: resolves when the agent's reported properties satisfy `ok` (checked after each report). */
async function reportedUntil(tg: TestGateway, ok: (reported: any) => boolean): Promise<any> {
  const agent = plugin(tg).agent!;
  for (;;) {
    await agent.flushReports();
    const twin = await tg.gw.hub.getTwin(`${tg.gw.config.device_id}/$edgeAgent`);
    if (ok(twin.properties.reported)) return twin.properties.reported;
    await once(reportEvents, "report");
  }
}
const reportEvents = new EventEmitter();

/** The agent plugin with its instance captured for assertions. */
let captured: AgentPlugin | undefined;
const capturingAgent = definePlugin({
  manifest: agentPlugin.manifest,
  register: (scope) => scope.register(TOKENS.Plugin, { useFactory: (c) => (captured = c.resolve(AgentPlugin)) }),
});
function plugin(_tg: TestGateway): AgentPlugin {
  return captured!;
}

test("a manifest applied through the root's service API starts two SDK process modules that talk over its routes; a killed module restarts and its restart count is reported; schema 9.9 is refused with 412 and changes nothing", async (t) => {
  const tg = await startTestGateway({
    plugins: ["mqtt", "root"],
    address: ADDRESS,
    ports: { mqtt: 8883 },
    extraPlugins: [
      { module: sinkPlugin },
      { module: capturingAgent, settings: { backoff_min_ms: 200, backoff_max_ms: 1000, stop_grace_ms: 3000 } },
    ],
  });
  t.after(() => tg.stop({ remove: true }));
  const self = tg.gw.config.device_id;
  if (!tg.gw.identities.get(self)?.edge) await tg.addDevice(self, { edge: true });
  // Wake reportedUntil on every reported patch of the agent twin.
  const hub = tg.gw.hub;
  const original = hub.patchReported.bind(hub);
  hub.patchReported = async (id, patch) => {
    const v = await original(id, patch);
    reportEvents.emit("report");
    return v;
  };

  // 1. The manifest through IoT Hub's call; both module twins hold it as desired properties.
  const relayed = new Promise<any>((resolve) => {
    arrivals.on("message", (m) => {
      if (m.properties["via"] === "relay") resolve(m);
    });
  });
  const applied = await service(tg, "POST", `/devices/${self}/applyConfigurationContent`, manifest());
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  const agentTwin = await service(tg, "GET", `/twins/${self}/modules/${encodeURIComponent("$edgeAgent")}`);
  assert.equal(agentTwin.body.properties.desired.schemaVersion, "1.1");
  assert.ok(tg.gw.identities.get(`${self}/sender`), "module identities are created");

  // 2. sender → relay over the manifest's route, relay → $upstream: reaches the root's sink with the manifest's env.
  const m = await relayed;
  assert.equal(m.properties["greeting"], "hello from the manifest");
  assert.equal(m.properties["input"], "in1");
  assert.equal(m.systemProperties.connectionModuleId, "relay");
  assert.equal(JSON.parse(m.body.toString()).n >= 0, true);
  // The route's own TTL wins over storeAndForwardConfiguration's.
  assert.ok(m.deadline - m.enqueuedTime <= 600_000 && m.deadline - m.enqueuedTime > 590_000);

  let reported = await reportedUntil(tg, (r) => r.lastDesiredStatus?.code === 200
    && r.modules?.sender?.runtimeStatus === "running" && r.modules?.relay?.runtimeStatus === "running");
  assert.equal(reported.lastDesiredVersion, agentTwin.body.properties.desired.$version);
  assert.equal(reported.modules.sender.restartCount, 0);

  // 3. Kill the sender (restartPolicy always): it comes back, and the root sees restartCount 1.
  const sup = plugin(tg).agent!.moduleState("sender")!;
  const pid = Number(sup.running!.ref);
  process.kill(pid, "SIGKILL");
  reported = await reportedUntil(tg, (r) => r.modules?.sender?.restartCount === 1 && r.modules.sender.runtimeStatus === "running");
  assert.equal(reported.modules.sender.exitCode, 137);
  assert.notEqual(Number(sup.running!.ref), pid);
  const atRoot = await service(tg, "GET", `/twins/${self}/modules/${encodeURIComponent("$edgeAgent")}`);
  assert.equal(atRoot.body.properties.reported.modules.sender.restartCount, 1);
  assert.ok(sup.logs().some((l) => l.includes("sender connected")), "stdout is kept for GetModuleLogs");

  // 4. A manifest with schema 9.9: reported 412, same processes, same routes.
  const relayPid = plugin(tg).agent!.moduleState("relay")!.running!.ref;
  const senderPid = sup.running!.ref;
  const refused = await service(tg, "POST", `/devices/${self}/applyConfigurationContent`, manifest("9.9", "2.0"));
  assert.equal(refused.status, 200);
  reported = await reportedUntil(tg, (r) => r.lastDesiredStatus?.code === 412);
  assert.match(reported.lastDesiredStatus.description, /schemaVersion "9\.9"/);
  assert.equal(plugin(tg).agent!.moduleState("relay")!.running!.ref, relayPid);
  assert.equal(sup.running!.ref, senderPid);
  assert.equal(reported.modules.sender.version, "1.0");
  const again = new Promise<void>((resolve) => {
    arrivals.on("message", (mm) => {
      if (mm.properties["via"] === "relay") resolve();
    });
  });
  await again;
});
