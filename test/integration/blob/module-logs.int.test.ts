// UploadModuleLogs with IoT Edge's payload on a gateway running the agent (a real process module) and the
// blob plugin: items[].id picks the sources (the module by name, the gateway's plugins by plugin name),
// filter.regex / tail / loglevel apply per source, json + gzip are honoured, a bad payload names its field.
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { gunzipSync } from "node:zlib";
import { test } from "node:test";
import { createLogger, definePlugin, TOKENS, type MethodResult } from "../../../core/index.js";
import agentPlugin from "../../../plugins/agent/index.js";
import blob, { BlobPlugin } from "../../../plugins/blob/index.js";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";

let captured: BlobPlugin | undefined;
const capturingBlob = definePlugin({
  manifest: blob.manifest,
  register: (scope) => scope.register(TOKENS.Plugin, { useFactory: (c) => (captured = c.resolve(BlobPlugin)) }),
});

// 20 lines in IoT Edge's recommended format, levels cycling 6 4 3 6 7; then the module idles.
const TICKER = `const lv = [6, 4, 3, 6, 7];
const ts = () => new Date().toISOString().replace("T", " ").replace("Z", " +00:00");
for (let i = 0; i < 20; i++) console.log("<" + lv[i % 5] + "> " + ts() + " ticker line " + i);
setInterval(() => {}, 1e6);`;

function agentDeployment(): Record<string, unknown> {
  return {
    schemaVersion: "1.1",
    runtime: { type: "docker", settings: { minDockerVersion: "v1.25" } },
    systemModules: { edgeAgent: { type: "docker", settings: { image: "mcr.microsoft.com/azureiotedge-agent:1.5" } }, edgeHub: { type: "docker", status: "running", restartPolicy: "always", settings: { image: "mcr.microsoft.com/azureiotedge-hub:1.5" } } },
    modules: { ticker: { type: "process", version: "1.0", status: "running", restartPolicy: "never", settings: { command: process.execPath, args: JSON.stringify(["-e", TICKER]) } } },
  };
}

/** A method on this gateway's $edgeAgent: the agent's link answers its own and passes the rest to the blob plugin. */
async function call(tg: TestGateway, methodName: string, payload: unknown): Promise<MethodResult & { payload: Record<string, any> }> {
  return (await tg.gw.hub.invokeMethod(`${tg.gw.config.device_id}/$edgeAgent`, { methodName, payload, responseTimeoutInSeconds: 10 })) as MethodResult & { payload: Record<string, any> };
}

/** Runs UploadModuleLogs, waits for its task, returns the blob's bytes from the gateway's store. */
async function uploadLogs(tg: TestGateway, payload: Record<string, unknown>): Promise<{ name: string; body: Buffer }> {
  const started = await call(tg, "UploadModuleLogs", payload);
  assert.equal(started.status, 200, JSON.stringify(started.payload));
  for (;;) {
    const s = await call(tg, "GetTaskStatus", { schemaVersion: "1.0", correlationId: started.payload["correlationId"] });
    if (s.payload["status"] === "Completed") {
      const store = captured!.store!;
      const meta = (await store.getBlob(s.payload["container"], s.payload["blob"]))!;
      const chunks: Buffer[] = [];
      for await (const c of store.read(meta)) chunks.push(c as Buffer);
      return { name: meta.name, body: Buffer.concat(chunks) };
    }
    assert.equal(s.payload["status"], "Running", JSON.stringify(s.payload));
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("UploadModuleLogs: items[].id selects the agent's module or a plugin; regex, tail (per source), loglevel, json, gzip; bad fields named", async (t) => {
  const tg = await startTestGateway({
    plugins: ["root"],
    logger: createLogger({ level: "debug", destination: new PassThrough().resume() }),
    extraPlugins: [
      { module: agentPlugin, settings: { backoff_min_ms: 200, backoff_max_ms: 1000, stop_grace_ms: 2000 } },
      { module: capturingBlob, settings: { account_name: "edgelocal" }, essential: true },
    ],
  });
  t.after(() => tg.stop({ remove: true }));
  const self = tg.gw.config.device_id;
  await tg.gw.hub.patchDesired(`${self}/$edgeAgent`, agentDeployment());
  // The module's 20 lines reach the agent's capture.
  for (let i = 0; ; i++) {
    const r = await call(tg, "GetModuleLogs", { schemaVersion: "1.0", items: [{ id: "ticker" }] });
    if (r.status === 200 && String((r.payload as unknown as { payload: string }[])[0]?.payload ?? "").includes("ticker line 19")) break;
    assert.ok(i < 200, `the ticker module's output never reached the agent: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  tg.gw.logger.child({ plugin: "blob" }).info({}, "a blob line for the plugin filter");

  // 1. One module, a regex over its lines, then the last 3 of those.
  const one = await uploadLogs(tg, { schemaVersion: "1.0", items: [{ id: "^ticker$", filter: { regex: "line 1\\d$", tail: 3 } }], encoding: "none", contentType: "text" });
  assert.match(one.name, new RegExp(`^logs/${self}/.*\\.log$`));
  const lines = one.body.toString("utf8").trim().split("\n");
  assert.equal(lines[0], "==> ticker <==");
  assert.deepEqual(lines.slice(1).map((l) => l.replace(/^.* ticker /, "")), ["line 17", "line 18", "line 19"]);

  // 2. Two items: the module's errors and worse (syslog <= 3), and the blob plugin's last 2 lines; json + gzip.
  const two = await uploadLogs(tg, {
    schemaVersion: "1.0",
    items: [{ id: "^ticker$", filter: { loglevel: 3 } }, { id: "^blob$", filter: { tail: 2 } }],
    encoding: "gzip", contentType: "json",
  });
  assert.match(two.name, /\.json\.gz$/);
  const records = JSON.parse(gunzipSync(two.body).toString("utf8")) as { id: string; logLevel: number; log: string; timeStamp: string | null }[];
  const ticker = records.filter((r) => r.id === "ticker");
  assert.deepEqual(ticker.map((r) => r.log.replace(/^.* ticker /, "")), ["line 2", "line 7", "line 12", "line 17"]);
  assert.ok(ticker.every((r) => r.logLevel === 3 && r.timeStamp !== null));
  assert.equal(records.filter((r) => r.id === "blob").length, 2);
  assert.deepEqual([...new Set(records.map((r) => r.id))].sort(), ["blob", "ticker"], "no other source");

  // 3. since: a time after the module wrote selects none of its lines; the default item is every source.
  const later = await uploadLogs(tg, { schemaVersion: "1.0", items: [{ id: "ticker", filter: { since: new Date(Date.now() + 60_000).toISOString() } }] });
  assert.equal(later.body.toString().includes("ticker line"), false);
  const all = (await uploadLogs(tg, { schemaVersion: "1.0" })).body.toString();
  for (const id of ["ticker", "blob", "agent"]) assert.ok(all.includes(`==> ${id} <==`), `the default selects ${id}`);

  // 4. Bad payloads are refused at once, naming the field.
  for (const [payload, field] of [
    [{ items: [{ id: "(" }] }, "items[0].id"],
    [{ items: [{ id: ".*", filter: { tail: -1 } }] }, "items[0].filter.tail"],
    [{ items: [{ id: ".*" }, { id: ".*", filter: { loglevel: 9 } }] }, "items[1].filter.loglevel"],
    [{ items: [{ id: ".*", filter: { since: "yesterday-ish" } }] }, "items[0].filter.since"],
    [{ encoding: "zip" }, "encoding"],
  ] as const) {
    const r = await call(tg, "UploadModuleLogs", payload);
    assert.equal(r.status, 400, JSON.stringify(payload));
    assert.equal(r.payload["field"], field);
    assert.ok(String(r.payload["message"]).startsWith(`${field}:`));
  }
});
