import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { needPeer } from "../support/peers.js";

/** The Debian packages the podman test needs (runc: crun 1.8 refuses this kernel's hybrid cgroup layout). */
export const PODMAN_PACKAGES = ["podman", "runc", "busybox-static"] as const;
const INSTALL = `sudo apt-get install -y ${PODMAN_PACKAGES.join(" ")}`;

/**
 * A real rootful podman serving the Docker-compatible API on a private unix socket, with all of its state in a
 * temp dir (vfs storage, runroot, tmpdir, events file), never the system's /var/lib/containers. Settings that
 * make it run in a sandbox without CAP_SYS_RESOURCE or a pure cgroup v2: runc, cgroupfs, and default ulimits
 * equal to this process's own (rootful podman asks for nofile/nproc 1048576, which needs CAP_SYS_RESOURCE).
 */
export interface PodmanService {
  readonly socket: string;
  readonly dir: string;
  /** `$HOME` of the service: certs.d under it holds the CAs podman trusts per registry host. */
  trustRegistry(hostPort: string, caPem: string): void;
  /** One request to the Docker-compatible API (unversioned path, e.g. `/containers/json`). */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

/** Soft:hard of one /proc/self/limits row, capped, for podman's `default_ulimits`. */
function ownLimit(row: string, cap: number): string {
  const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith(row));
  const [soft, hard] = (line ?? "").slice(row.length).trim().split(/\s+/);
  const n = (v: string | undefined): number => Math.min(cap, v === undefined || v === "unlimited" ? cap : Number(v));
  return `${n(soft)}:${n(hard)}`;
}

function globalArgs(dir: string): string[] {
  return [
    "--root", join(dir, "storage"), "--runroot", join(dir, "run"), "--tmpdir", join(dir, "tmp"),
    "--storage-driver", "vfs", "--events-backend", "file", "--cgroup-manager", "cgroupfs", "--runtime", "runc",
  ];
}

function podmanEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, HOME: join(dir, "home"), CONTAINERS_CONF: join(dir, "containers.conf"), CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf") };
}

/** An uncompressed image layer: a busybox rootfs (static binary and applet links), tarred by `tar`. */
export function busyboxLayer(): Buffer {
  const root = mkdtempSync(join(tmpdir(), "strata-busybox-"));
  try {
    mkdirSync(join(root, "bin"));
    copyFileSync("/bin/busybox", join(root, "bin", "busybox"));
    for (const applet of ["sh", "echo", "sleep", "cat", "ls", "env", "true", "false", "test"]) symlinkSync("busybox", join(root, "bin", applet));
    for (const d of ["tmp", "proc", "sys", "dev", "etc", "var/run"]) mkdirSync(join(root, d), { recursive: true });
    const r = spawnSync("tar", ["-C", root, "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-cf", "-", "."], { maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`tar of ${root} failed: ${r.stderr.toString()}`);
    return r.stdout;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Why podman cannot run a container here (missing packages, or a probe `podman run` that fails, with its
 * error), or false. Skip reasons name the install command.
 */
export function podmanUnavailable(): string | false {
  for (const pkg of PODMAN_PACKAGES) {
    const missing = needPeer(pkg, pkg === "busybox-static" ? "/bin/busybox" : pkg);
    if (missing) return `${missing} (the podman test needs: ${INSTALL})`;
  }
  if (process.getuid?.() !== 0) return `rootful podman needs root here (no subuid ranges for rootless); run as root after ${INSTALL}`;
  const dir = prepareDir();
  try {
    const imported = spawnSync("podman", [...globalArgs(dir), "import", join(dir, "probe.tar"), "localhost/strata-probe:1"], { env: podmanEnv(dir), encoding: "utf8", timeout: 60_000 });
    if (imported.status !== 0) return `podman cannot import an image here: ${imported.stderr.trim()}`;
    const ran = spawnSync("podman", [...globalArgs(dir), "run", "--rm", "--network=host", "localhost/strata-probe:1", "/bin/true"], { env: podmanEnv(dir), encoding: "utf8", timeout: 60_000 });
    if (ran.status !== 0) return `podman cannot run a container here: ${ran.stderr.trim() || `exit ${ran.status}`}`;
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function prepareDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "strata-podman-"));
  for (const d of ["storage", "run", "tmp", "home"]) mkdirSync(join(dir, d));
  writeFileSync(join(dir, "containers.conf"), [
    "[containers]",
    // podman 4.3's own processes (service, conmon, runc) run with nproc 32768 whatever the caller's limit
    // (measured in /proc/<pid>/limits): a container limit above it is a raise, refused without CAP_SYS_RESOURCE.
    `default_ulimits = ["nofile=${ownLimit("Max open files", 1_048_576)}", "nproc=${ownLimit("Max processes", 32_768)}"]`,
    "[engine]",
    'runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    "",
  ].join("\n"));
  // No search registries: an unqualified name never leaves the machine.
  writeFileSync(join(dir, "registries.conf"), 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n');
  writeFileSync(join(dir, "probe.tar"), busyboxLayer());
  return dir;
}

export async function startPodman(): Promise<PodmanService> {
  const dir = prepareDir();
  const socket = join(dir, "podman.sock");
  const child: ChildProcess = spawn("podman", [...globalArgs(dir), "system", "service", "--time=0", `unix://${socket}`], {
    env: podmanEnv(dir), stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const api = (method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath: socket, method, path: `/v1.41${path}`, headers: { host: "podman", ...(payload ? { "content-type": "application/json" } : {}) } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(payload);
  });
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`podman system service exited (${child.exitCode}): ${stderr}`);
    if ((await api("GET", "/_ping").catch(() => undefined))?.status === 200) break;
    if (i > 200) throw new Error(`podman system service did not answer on ${socket} in 20 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    socket, dir, api,
    trustRegistry(hostPort, caPem) {
      const certs = join(dir, "home", ".config", "containers", "certs.d", hostPort);
      mkdirSync(certs, { recursive: true });
      writeFileSync(join(certs, "ca.crt"), caPem);
    },
    async close() {
      // conmon keeps containers alive after the service ends: remove them first.
      const list = await api("GET", "/containers/json?all=1").catch(() => undefined);
      for (const c of list?.status === 200 ? (JSON.parse(list.body) as { Id: string }[]) : []) await api("DELETE", `/containers/${c.Id}?force=true`).catch(() => undefined);
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
