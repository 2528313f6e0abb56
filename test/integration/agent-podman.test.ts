import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { silentLogger } from "../../core/index.js";
import { ContainerRuntime, ModuleSupervisor, type ModuleSpec, type StartContext } from "../../plugins/agent/index.js";
import type { TestGateway } from "../support/gateway.js";
import { startDistribution, type Distribution } from "./registry/support/distribution.js";
import { PULL_PASSWORD, PULL_USER, startCacheGateway } from "./registry/support/harness.js";
import { OciLayout, pushLayout } from "./registry/support/oci.js";
import { busyboxLayer, podmanUnavailable, startPodman, type PodmanService } from "./agent-podman-service.js";

/**
 * The container runtime against REAL podman (4.3, Debian's package) through its Docker-compatible API: the
 * image is pushed to a real Distribution, pulled by podman through a gateway front's registry cache
 * (`$upstream` rewritten to the front, TLS trusted, pull-user credentials in X-Registry-Auth), created with
 * createOptions passed through, started, inspected, stopped, restarted by the supervisor per policy, logs
 * captured. Skipped, with the reason and the install command, where podman cannot run a container.
 */
const unavailable = podmanUnavailable();
if (unavailable) console.log(`# agent-podman skipped: ${unavailable}`);

const REPO = "plant/busybox";

/** Pushes a one-layer busybox image (PATH=/bin) to Distribution as REPO:1. */
async function pushBusybox(upstream: Distribution): Promise<void> {
  const layout = new OciLayout();
  const layer = layout.addBlob(busyboxLayer(), "application/vnd.oci.image.layer.v1.tar");
  const config = layout.addBlob(Buffer.from(JSON.stringify({
    architecture: "amd64", os: "linux",
    rootfs: { type: "layers", diff_ids: [layer.digest] },
    config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh", "-c", "echo default command"] },
  })), "application/vnd.oci.image.config.v1+json");
  const manifest = layout.addBlob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers: [layer] })), "application/vnd.oci.image.manifest.v1+json");
  layout.tag(manifest, "1");
  await pushLayout(layout, "1", upstream.hostPort, REPO);
  rmSync(layout.dir, { recursive: true, force: true });
}

function moduleSpec(name: string, script: string, over: Partial<ModuleSpec> = {}, extra: Record<string, unknown> = {}): ModuleSpec {
  return {
    name, type: "docker", version: "1.0", status: "running", restartPolicy: "always", imagePullPolicy: "on-create", startupOrder: 0,
    settings: {
      image: `$upstream:443/${REPO}:1`,
      createOptions: JSON.stringify({ Cmd: ["/bin/sh", "-c", script], HostConfig: { NetworkMode: "host" }, ...extra }),
    },
    env: {}, ...over,
  };
}

/** A listening workload socket for a module (the agent's WorkloadApi is tested elsewhere; here it only has to be mounted). */
async function workloadSocket(servers: Server[], dirs: string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "strata-ws-"));
  dirs.push(dir);
  const path = join(dir, "workload.sock");
  const server = createServer((s) => s.end());
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return path;
}

test("container runtime against real podman (Docker-compatible API)", { skip: unavailable, timeout: 240_000 }, async (t) => {
  const servers: Server[] = [];
  const dirs: string[] = [];
  let upstream: Distribution | undefined;
  let gw: TestGateway | undefined;
  let podman: PodmanService | undefined;
  t.after(async () => {
    await podman?.close();
    await gw?.stop({ remove: true });
    await upstream?.close();
    for (const s of servers) s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  upstream = await startDistribution();
  await pushBusybox(upstream);
  gw = await startCacheGateway(upstream.url);
  const front = `127.0.0.1:${gw.port("https")}`;
  podman = await startPodman();
  podman.trustRegistry(front, gw.caPem);
  const pm = podman;
  const runtime = new ContainerRuntime({
    socket: pm.socket, apiVersion: "1.41", pullThrough: front, logLines: 100,
    registryAuth: (registry) => (registry === front ? { username: PULL_USER, password: PULL_PASSWORD } : undefined),
  });
  const inspect = async (ref: string) => {
    const r = await pm.api("GET", `/containers/${ref}/json`);
    return { status: r.status, body: r.status === 200 ? JSON.parse(r.body) : undefined };
  };

  await t.test("pulls through the front, creates with createOptions passed through, runs, stops on SIGTERM, keeps the logs", async () => {
    const ws = await workloadSocket(servers, dirs);
    const ctx: StartContext = { env: { IOTEDGE_MODULEID: "sensor", IOTEDGE_DEVICEID: "gw1", IOTEDGE_AUTHSCHEME: "sasToken" }, workloadSocket: ws };
    const script = [
      "echo started $IOTEDGE_MODULEID in $(pwd) with $FROM_CREATE_OPTIONS",
      "echo to-stderr >&2",
      "test -S /var/run/iotedge/workload.sock && echo workload socket mounted",
      "trap 'echo got TERM; exit 0' TERM",
      "while true; do sleep 0.1; done",
    ].join("; ");
    const spec = moduleSpec("sensor", script, {}, { Env: ["FROM_CREATE_OPTIONS=yes"], WorkingDir: "/tmp", Labels: { "plant.line": "3" } });
    const before = upstream!.blobGets();
    const run = await runtime.start(spec, ctx);
    // The pull went through the cache to Distribution (config + layer), and podman names the image by the front.
    assert.equal(upstream!.blobGets() - before, 2, "config and layer fetched upstream once each");
    const images = JSON.parse((await pm.api("GET", "/images/json")).body) as { RepoTags: string[] }[];
    assert.ok(images.some((i) => i.RepoTags?.includes(`${front}/${REPO}:1`)), JSON.stringify(images));
    // What podman made of the create body: createOptions kept, env/labels/bind merged in.
    const c = await inspect(run.ref);
    assert.equal(c.status, 200);
    assert.equal(c.body.Name.replace(/^\//, ""), "sensor");
    assert.equal(c.body.State.Running, true);
    assert.equal(c.body.Config.WorkingDir, "/tmp");
    assert.equal(c.body.HostConfig.NetworkMode, "host");
    assert.equal(c.body.Config.Labels["plant.line"], "3");
    assert.equal(c.body.Config.Labels["net.azure-devices.edge.owner"], "strata");
    for (const e of ["FROM_CREATE_OPTIONS=yes", "IOTEDGE_MODULEID=sensor", "IOTEDGE_WORKLOADURI=unix:///var/run/iotedge/workload.sock", "PATH=/bin"]) {
      assert.ok(c.body.Config.Env.includes(e), `${e} in ${c.body.Config.Env}`);
    }
    assert.ok(c.body.Mounts.some((m: { Source: string; Destination: string }) => m.Source === ws && m.Destination === "/var/run/iotedge/workload.sock"));
    assert.equal(await run.health!(), undefined, "no health check: no health");
    await new Promise((r) => setTimeout(r, 500));
    await run.stop(5000);
    assert.deepEqual(await run.exited, { code: 0 });
    // stdout and stderr are two pipes: their lines interleave as conmon reads them; each keeps its order.
    assert.deepEqual(run.logs().filter((l) => l !== "to-stderr"), ["started sensor in /tmp with yes", "workload socket mounted", "got TERM"]);
    assert.ok(run.logs().includes("to-stderr"), run.logs().join("|"));
    assert.equal((await inspect(run.ref)).status, 404, "stop removes the container");
  });

  await t.test("the supervisor restarts an exiting container per policy; logs and exit codes survive restarts; a warm pull fetches nothing upstream", async () => {
    const ws = await workloadSocket(servers, dirs);
    const waiters: (() => void)[] = [];
    const sup = (spec: ModuleSpec) => new ModuleSupervisor(spec, {
      runtime, prepare: async (): Promise<StartContext> => ({ env: { IOTEDGE_MODULEID: spec.name }, workloadSocket: ws }),
      changed: () => waiters.splice(0).forEach((w) => w()), logger: silentLogger(),
      backoffMinMs: 50, backoffMaxMs: 200, resetAfterMs: 60_000, stopGraceMs: 2000, healthIntervalMs: 60_000,
    });
    const until = async (ok: () => boolean, what: string) => {
      const deadline = Date.now() + 60_000;
      while (!ok()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 200); });
      }
    };
    const before = upstream!.blobGets();
    const failing = sup(moduleSpec("flaky", "echo run of $IOTEDGE_MODULEID; exit 3", { restartPolicy: "on-failure" }));
    t.after(() => failing.stop());
    failing.start();
    await until(() => failing.state.restartCount >= 2 && failing.state.runtimeStatus === "running", "two restarts");
    await failing.stop();
    assert.equal(failing.state.exitCode, 3);
    assert.ok(failing.logs().filter((l) => l === "run of flaky").length >= 2, failing.logs().join("|"));
    assert.equal(upstream!.blobGets() - before, 0, "warm pulls are served by podman's store and the cache");

    const never = sup(moduleSpec("oneshot", "exit 5", { restartPolicy: "never" }));
    t.after(() => never.stop());
    never.start();
    await until(() => never.state.runtimeStatus === "failed", "failed");
    assert.deepEqual([never.state.exitCode, never.state.restartCount], [5, 0]);

    const clean = sup(moduleSpec("done", "echo bye", { restartPolicy: "on-failure" }));
    t.after(() => clean.stop());
    clean.start();
    await until(() => clean.state.runtimeStatus === "stopped" && clean.state.lastExitTimeUtc !== null, "stopped");
    assert.deepEqual([clean.state.exitCode, clean.state.restartCount], [0, 0]);
    assert.deepEqual(clean.logs(), ["bye"]);
  });

  await t.test("engine errors name what failed: a missing image, createOptions podman refuses", async () => {
    const ws = await workloadSocket(servers, dirs);
    const ctx: StartContext = { env: {}, workloadSocket: ws };
    const missing = { ...moduleSpec("ghost", "true"), settings: { image: `$upstream/${REPO}:nope` } };
    await assert.rejects(runtime.start(missing, ctx), new RegExp(`pull ${front.replace(/\./g, "\\.")}/${REPO}:nope failed`));
    // Without X-Registry-Auth the front refuses the pull: the credentials above really travelled through podman.
    const anonymous = new ContainerRuntime({ socket: pm.socket, apiVersion: "1.41", pullThrough: front, logLines: 10 });
    await assert.rejects(anonymous.start(moduleSpec("nocreds", "true"), ctx), /pull .* failed: .*(unauthorized|authentication required|401)/i);
    const badOptions = moduleSpec("bad", "true", {}, { HostConfig: { NetworkMode: "container:no-such-container" } });
    await assert.rejects(runtime.start({ ...badOptions, imagePullPolicy: "never" }, ctx), /container (create|start) failed \(\d{3}\): .*no-such-container/);
  });
});
