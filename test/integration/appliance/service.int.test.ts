// strata.service's entry (dist/appliance/service.js) speaks systemd's notify protocol: READY=1 only once the
// gateway listens, STOPPING=1 on SIGTERM, then a clean exit. NOTIFY_SOCKET is a python3 datagram receiver.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import https from "node:https";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { ensureDevPki } from "../../../core/pki/index.js";

const DIST = resolve(__dirname, "../../..");
const REPO = resolve(DIST, "..");
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const skip = !has("gcc") ? "needs gcc" : !has("python3") ? "needs python3" : !existsSync("/usr/include/node/node_api.h") ? "needs Node's headers (apt-get install -y nodejs)" : false;

const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    m = s.recv(4096).decode()
    if m != "WATCHDOG=1":
        print(m.replace("\\n", " "), flush=True)
    if m.startswith("STOPPING"):
        break
`;

function lines(stream: NodeJS.ReadableStream, onLine: (l: string) => void): void {
  let buf = "";
  stream.on("data", (c: Buffer) => {
    buf += c.toString();
    const parts = buf.split("\n");
    buf = parts.pop()!;
    parts.forEach(onLine);
  });
}

test("service.js: READY=1 after the gateway listens, STOPPING=1 on SIGTERM, exit 0", { skip, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "strata-svc-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const addon = join(dir, "sd_notify.node");
  const cc = spawnSync("gcc", ["-shared", "-fPIC", "-O2", "-I", "/usr/include/node", join(REPO, "appliance/sd-notify/sd_notify.c"), "-o", addon], { encoding: "utf8" });
  assert.equal(cc.status, 0, cc.stderr);
  const pki = await ensureDevPki(join(dir, "pki"), { hostnames: ["localhost"], ips: ["127.0.0.1"] });
  writeFileSync(join(dir, "owner.key"), "b3duZXIta2V5LWZvci10aGUtc2VydmljZS10ZXN0LTEyMzQ=\n", { mode: 0o600 });
  writeFileSync(join(dir, "strata.toml"), [
    `hub = "plant"`, `device_id = "root"`, `hostname = "localhost"`, `data_dir = "data"`,
    `[tls]`, `cert_file = "${pki.paths.serverChain}"`, `key_file = "${pki.paths.serverKey}"`, `ca_file = "${pki.paths.trustBundle}"`,
    `[listen]`, `address = "127.0.0.1"`, `mqtt = 0`, `amqp = 0`, `https = 0`,
    `[service]`, `owner_key_file = "owner.key"`,
    `[log]`, `level = "warn"`,
  ].join("\n") + "\n");

  const sock = join(dir, "notify.sock");
  const rx = spawn("python3", ["-c", RECEIVER, sock], { stdio: ["ignore", "pipe", "inherit"] });
  t.after(() => rx.kill());
  const got: string[] = [];
  const waiters: { match: RegExp; resolve: (l: string) => void }[] = [];
  lines(rx.stdout, (l) => {
    got.push(l);
    for (const w of waiters.splice(0)) (w.match.test(l) ? w.resolve(l) : waiters.push(w));
  });
  const next = (match: RegExp) => new Promise<string>((r) => { const hit = got.find((l) => match.test(l)); if (hit) r(hit); else waiters.push({ match, resolve: r }); });
  await next(/^bound$/);

  const svc = spawn(join(REPO, "node_modules/.bin/node"), [join(DIST, "appliance/service.js"), "--config", join(dir, "strata.toml")], {
    env: { ...process.env, NOTIFY_SOCKET: sock, WATCHDOG_USEC: "10000000", WATCHDOG_PID: "", STRATA_SD_NOTIFY_ADDON: addon },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  svc.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  t.after(() => svc.kill("SIGKILL"));
  const ready = await Promise.race([next(/^READY=1/), once(svc, "exit").then(() => { throw new Error(`service exited before READY: ${stderr}`); })]);
  assert.match(ready, new RegExp(`MAINPID=${svc.pid}`));
  // READY promises a listening gateway: its https port (named in STATUS) answers now.
  const port = Number(/https 127\.0\.0\.1:(\d+)/.exec(ready)?.[1]);
  assert.ok(port > 0, ready);
  const status = await new Promise<number>((resolveStatus, reject) => {
    https.get({ host: "127.0.0.1", port, path: "/", ca: pki.trustBundle, servername: "localhost" }, (res) => { res.resume(); resolveStatus(res.statusCode ?? 0); }).once("error", reject);
  });
  assert.ok(status > 0);
  svc.kill("SIGTERM");
  await next(/^STOPPING=1$/);
  const [code] = await once(svc, "exit");
  assert.equal(code, 0, stderr);
});
