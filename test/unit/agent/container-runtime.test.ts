import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ContainerRuntime, demuxLogs, rewriteImage, type ModuleSpec } from "../../../plugins/agent/index.js";

/**
 * RECORDED-CONTRACT FAKE of the Docker Engine API (v1.41), NOT a real engine: it answers the endpoints the
 * runtime calls with the status codes and bodies the API documents. podman is not installed in this
 * sandbox and no dockerd runs, so the container runtime is tested against this contract only.
 */
function fakeDockerEngine(t: { after(fn: () => unknown): void }) {
  const socket = join(mkdtempSync(join(tmpdir(), "strata-fake-docker-")), "docker.sock");
  const calls: { method: string; path: string; body: any }[] = [];
  let finishWait: ((code: number) => void) | undefined;
  const frame = (stream: number, text: string) => {
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(Buffer.byteLength(text), 4);
    return Buffer.concat([head, Buffer.from(text)]);
  };
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
    const url = new URL(req.url!, "http://docker");
    calls.push({ method: req.method!, path: url.pathname + url.search, body });
    const p = url.pathname.replace(/^\/v1\.41/, "");
    const json = (status: number, o: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(o));
    if (p === "/images/create") return res.writeHead(200).end('{"status":"Pulling from x"}\n{"status":"Download complete"}\n');
    if (req.method === "DELETE") return res.writeHead(204).end();
    if (p === "/containers/create") return json(201, { Id: "c0ffee", Warnings: [] });
    if (p === "/containers/c0ffee/start") return res.writeHead(204).end();
    if (p === "/containers/c0ffee/wait") {
      finishWait = (code) => json(200, { StatusCode: code, Error: null });
      return;
    }
    if (p === "/containers/c0ffee/stop") {
      res.writeHead(204).end();
      finishWait?.(143);
      return;
    }
    if (p === "/containers/c0ffee/logs") return res.writeHead(200, { "content-type": "application/vnd.docker.raw-stream" }).end(Buffer.concat([frame(1, "hello out\n"), frame(2, "oops err\n")]));
    if (p === "/containers/c0ffee/json") return json(200, { Id: "c0ffee", State: { Status: "running", Health: { Status: "unhealthy" } } });
    return json(404, { message: `fake engine: no ${req.method} ${p}` });
  });
  t.after(() => server.close());
  return { socket, calls, listen: () => new Promise<void>((r) => server.listen(socket, r)) };
}

const spec: ModuleSpec = {
  name: "sensor", type: "docker", version: "1.0", status: "running", restartPolicy: "always", imagePullPolicy: "on-create", startupOrder: 0,
  settings: { image: "$upstream:443/azureiotedge-simulated-temperature-sensor:1.5", createOptions: JSON.stringify({ HostConfig: { Binds: ["/data:/data"] }, Env: ["A=1"] }) },
  env: {},
};

test("container runtime against the recorded-contract fake: pull through the front, create with env, labels and the workload socket, wait, logs, health, stop", async (t) => {
  const engine = fakeDockerEngine(t);
  await engine.listen();
  const rt = new ContainerRuntime({ socket: engine.socket, apiVersion: "1.41", pullThrough: "gw.local:443", logLines: 100 });
  assert.equal(rt.validate(spec), undefined);
  const run = await rt.start(spec, { env: { IOTEDGE_MODULEID: "sensor", IOTEDGE_WORKLOADURI: "unix:///host/sensor.sock" }, workloadSocket: "/host/sensor.sock" });
  const pull = engine.calls.find((c) => c.path.startsWith("/v1.41/images/create"))!;
  assert.equal(pull.path, `/v1.41/images/create?fromImage=${encodeURIComponent("gw.local:443/azureiotedge-simulated-temperature-sensor")}&tag=1.5`);
  const create = engine.calls.find((c) => c.path.startsWith("/v1.41/containers/create"))!;
  assert.equal(create.path, "/v1.41/containers/create?name=sensor");
  assert.equal(create.body.Image, "gw.local:443/azureiotedge-simulated-temperature-sensor:1.5");
  assert.deepEqual(create.body.HostConfig.Binds, ["/data:/data", "/host/sensor.sock:/var/run/iotedge/workload.sock"]);
  assert.ok(create.body.Env.includes("A=1") && create.body.Env.includes("IOTEDGE_WORKLOADURI=unix:///var/run/iotedge/workload.sock"));
  assert.equal(await run.health!(), "unhealthy");
  await run.stop(2000);
  assert.deepEqual(await run.exited, { code: 143 });
  assert.deepEqual(run.logs(), ["hello out", "oops err"]);
  assert.ok(engine.calls.some((c) => c.method === "POST" && c.path === "/v1.41/containers/c0ffee/stop?t=2"));
});

test("image refs: only $upstream is rewritten; logs demultiplexed or plain (TTY)", () => {
  assert.equal(rewriteImage("$upstream/a/b:1", "front:443"), "front:443/a/b:1");
  assert.equal(rewriteImage("mcr.microsoft.com/a:1", "front:443"), "mcr.microsoft.com/a:1");
  assert.equal(rewriteImage("$upstream:443/a:1", ""), "$upstream:443/a:1");
  assert.deepEqual(demuxLogs(Buffer.from("plain\ntext\n"), 10), ["plain", "text"]);
});
