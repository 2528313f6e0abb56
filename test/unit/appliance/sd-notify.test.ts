// The sd_notify N-API addon, compiled here against Node's headers and loaded by this Node: the datagrams it
// sends arrive on a unix datagram socket (received by python3: Node itself has no AF_UNIX datagram sockets).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { once } from "node:events";
import { test } from "node:test";
import { loadAddon, systemdNotifier } from "../../../appliance/sd-notify/index.js";

const REPO = resolve(__dirname, "../../../..");
const headers = [join(REPO, "appliance/.cache"), "/usr/include/node"].flatMap((d) => existsSync(d) && d.endsWith("node") ? [d] : existsSync(d) ? spawnSync("sh", ["-c", `ls -d ${d}/node-linux-*/include/node 2>/dev/null`], { encoding: "utf8" }).stdout.split("\n").filter(Boolean) : []);
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const skip = !has("gcc") ? "needs gcc" : !has("python3") ? "needs python3" : headers.length === 0 ? "needs Node's headers (apt-get install -y libnode-dev, or npm run appliance once)" : false;

const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    m = s.recv(4096).decode()
    print(repr(m), flush=True)
    if "STOPPING=1" in m:
        break
`;

test("READY, WATCHDOG and STOPPING reach NOTIFY_SOCKET through the N-API addon", { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "strata-sdn-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const addonFile = join(dir, "sd_notify.node");
  const cc = spawnSync("gcc", ["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-I", headers[0]!, join(REPO, "appliance/sd-notify/sd_notify.c"), "-o", addonFile], { encoding: "utf8" });
  assert.equal(cc.status, 0, cc.stderr);
  const sock = join(dir, "notify.sock");
  // The receiver reads until STOPPING: the watchdog may ping any number of times before it is stopped.
  const rx = spawn("python3", ["-c", RECEIVER, sock], { stdio: ["ignore", "pipe", "inherit"] });
  t.after(() => rx.kill());
  const lines: string[] = [];
  let buffered = "";
  const got = new Promise<void>((resolveAll) => {
    rx.stdout.on("data", (c: Buffer) => {
      buffered += c.toString();
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      lines.push(...parts);
      if (lines.some((l) => l.includes("STOPPING=1"))) resolveAll();
    });
  });
  await new Promise<void>((r) => rx.stdout.once("data", () => r()));

  const addon = loadAddon(addonFile);
  const n = systemdNotifier({ NOTIFY_SOCKET: sock, WATCHDOG_USEC: "2000", WATCHDOG_PID: String(process.pid) }, addon);
  assert.equal(n.active, true);
  n.ready("up");
  const stop = n.startWatchdog(); // every 1 ms: the first ping arrives without waiting on a clock
  await new Promise<void>((r) => { const i = setInterval(() => { if (lines.length >= 3) { clearInterval(i); r(); } }, 1); });
  stop();
  n.stopping();
  await got;
  await once(rx, "exit");
  assert.equal(lines[0], "bound");
  assert.equal(lines[1], `'READY=1\\nMAINPID=${process.pid}\\nSTATUS=up'`);
  assert.equal(lines[2], "'WATCHDOG=1'");
  // Any further watchdog pings sent before stop(), then STOPPING last.
  assert.equal(lines[lines.length - 1], "'STOPPING=1'");
  assert.ok(lines.slice(2, -1).every((l) => l === "'WATCHDOG=1'"), lines.join(" "));
  assert.throws(() => addon.notify(join(dir, "nobody-listens"), "READY=1"), /No such file|Connection refused/);
});

test("outside systemd (no NOTIFY_SOCKET) the notifier does nothing and needs no addon", () => {
  const n = systemdNotifier({});
  assert.equal(n.active, false);
  n.ready();
  n.stopping();
  n.startWatchdog()();
});
