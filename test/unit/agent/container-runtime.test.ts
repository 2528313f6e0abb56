import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ContainerRuntime, demuxLogs, rewriteImage, type ModuleSpec } from "../../../plugins/agent/index.js";

/**
 * RECORDED-CONTRACT FAKE of the Docker Engine API (v1.41), NOT a real engine: it answers the endpoints the
 * runtime calls with the status codes, headers and bodies recorded from real podman 4.3.1's Docker-compatible
 * service (Debian bookworm; `curl --unix-socket`, 2026-11). The real thing is exercised by
 * test/integration/agent-podman.test.ts where podman can run; this fake keeps the contract checked everywhere.
 */
function fakeDockerEngine(t: { after(fn: () => unknown): void }) {
  const socket = join(mkdtempSync(join(tmpdir(), "strata-fake-docker-")), "docker.sock");
  const calls: { method: string; path: string; body: any; headers: Record<string, string | string[] | undefined> }[] = [];
  let finishWait: ((code: number) => void) | undefined;
  let pullError: string | undefined;
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
    calls.push({ method: req.method!, path: url.pathname + url.search, body, headers: req.headers });
    const p = url.pathname.replace(/^\/v1\.41/, "");
    const json = (status: number, o: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(o));
    // podman: 200 and a stream of progress objects; a failure is an {"error"} object in that stream, still 200.
    if (p === "/images/create") {
      const id = { progressDetail: {}, id: "d94804a13a87" };
      return res.writeHead(200).end(pullError
        ? JSON.stringify({ progressDetail: {}, errorDetail: { message: pullError }, error: pullError }) + "\n"
        : [{ status: "Pulling fs layer", ...id }, { status: "Download complete", ...id }].map((o) => JSON.stringify(o) + "\n").join(""));
    }
    if (req.method === "DELETE" && p === "/containers/c0ffee") return res.writeHead(204).end();
    if (req.method === "DELETE") return json(404, { cause: "no such container", message: `no container with name or ID "${p.split("/")[2]}" found: no such container`, response: 404 });
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
    if (p === "/containers/c0ffee/logs") return res.writeHead(200, { "content-type": "application/octet-stream" }).end(Buffer.concat([frame(1, "hello out\n"), frame(2, "oops err\n")]));
    if (p === "/containers/c0ffee/json") return json(200, { Id: "c0ffee", State: { Status: "running", Running: true, ExitCode: 0, Health: { Status: health, FailingStreak: 0, Log: null } } });
    return json(404, { message: `fake engine: no ${req.method} ${p}` });
  });
  let health = "unhealthy";
  t.after(() => server.close());
  return {
    socket, calls,
    listen: () => new Promise<void>((r) => server.listen(socket, r)),
    exit: (code: number) => finishWait?.(code),
    setHealth: (h: string) => (health = h),
    failPulls: (message: string) => (pullError = message),
  };
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

test("recorded-contract fake: a container that exits on its own reports its code with its logs already read; no health check is no health; credentials go in X-Registry-Auth", async (t) => {
  const engine = fakeDockerEngine(t);
  await engine.listen();
  const rt = new ContainerRuntime({
    socket: engine.socket, apiVersion: "1.41", pullThrough: "gw.local:443", logLines: 100,
    registryAuth: (registry) => (registry === "gw.local:443" ? { username: "puller", password: "???>>>x" } : undefined),
  });
  const run = await rt.start(spec, { env: {}, workloadSocket: "/host/sensor.sock" });
  const auth = engine.calls.find((c) => c.path.startsWith("/v1.41/images/create"))!.headers["x-registry-auth"] as string;
  assert.match(auth, /^[A-Za-z0-9_-]*[-_][A-Za-z0-9_-]*=+$/, "base64url (this JSON has + or / in plain base64), padded");
  assert.deepEqual(JSON.parse(Buffer.from(auth, "base64url").toString()), { username: "puller", password: "???>>>x", serveraddress: "gw.local:443" });
  engine.setHealth("");
  assert.equal(await run.health!(), undefined);
  engine.exit(3);
  assert.deepEqual(await run.exited, { code: 3 });
  assert.deepEqual(run.logs(), ["hello out", "oops err"], "logs are read before the exit is reported");
  engine.failPulls("reading manifest 1.5 in gw.local:443/x: manifest unknown");
  await assert.rejects(rt.start(spec, { env: {}, workloadSocket: "/host/sensor.sock" }), /pull gw\.local:443\/azureiotedge-simulated-temperature-sensor:1\.5 failed: reading manifest/);
});

test("image refs: only $upstream is rewritten; logs demultiplexed or plain (TTY)", () => {
  assert.equal(rewriteImage("$upstream/a/b:1", "front:443"), "front:443/a/b:1");
  assert.equal(rewriteImage("mcr.microsoft.com/a:1", "front:443"), "mcr.microsoft.com/a:1");
  assert.equal(rewriteImage("$upstream:443/a:1", ""), "$upstream:443/a:1");
  assert.deepEqual(demuxLogs(Buffer.from("plain\ntext\n"), 10), ["plain", "text"]);
});
