// The units, sysusers.d and tmpfiles.d pass systemd's own tools; hardening stays as designed.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";

const SYSTEMD = resolve(__dirname, "../../../../systemd");
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const skip = has("systemd-analyze") ? false : "needs systemd-analyze (apt-get install -y systemd)";
const UNITS = ["strata.service", "strata-firstboot.service"];

/** A root with the units installed, the host's system units (targets) and stand-ins for the executables. */
function fakeRoot(t: import("node:test").TestContext, edit?: (name: string, text: string) => string): string {
  const root = mkdtempSync(join(tmpdir(), "strata-units-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, "usr/lib/strata/bin"), { recursive: true });
  mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
  mkdirSync(join(root, "usr/lib/systemd"), { recursive: true });
  cpSync("/usr/lib/systemd/system", join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
  for (const bin of ["node", "strata"]) {
    writeFileSync(join(root, "usr/lib/strata/bin", bin), "#!/bin/sh\n");
    chmodSync(join(root, "usr/lib/strata/bin", bin), 0o755);
  }
  for (const u of UNITS) {
    const text = readFileSync(join(SYSTEMD, u), "utf8");
    writeFileSync(join(root, "etc/systemd/system", u), edit ? edit(u, text) : text);
  }
  return root;
}

function verify(root: string): { status: number | null; out: string } {
  const r = spawnSync("systemd-analyze", ["verify", `--root=${root}`, ...UNITS.map((u) => `/etc/systemd/system/${u}`)], { encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

test("systemd-analyze verify accepts strata.service and strata-firstboot.service without a warning", { skip }, (t) => {
  const r = verify(fakeRoot(t));
  assert.equal(r.status, 0, r.out);
  assert.equal(r.out, "", "no warnings");
});

test("the verify check can fail: a misspelt key is reported", { skip }, (t) => {
  const r = verify(fakeRoot(t, (name, text) => (name === "strata.service" ? text.replace(/^NotifyAccess=/m, "NotifyAcces=") : text)));
  assert.match(r.out, /Unknown key 'NotifyAcces'/);
});

test("strata.service: Type=notify with watchdog, its own user with CAP_NET_BIND_SERVICE only, strict hardening", () => {
  const unit = readFileSync(join(SYSTEMD, "strata.service"), "utf8");
  for (const line of [
    "Type=notify", "NotifyAccess=main", "WatchdogSec=30", "User=strata", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes", "StateDirectory=strata", "ProtectSystem=strict",
    "ReadWritePaths=/etc/strata", "PrivateTmp=yes", "Restart=on-failure",
  ]) assert.ok(unit.split("\n").includes(line), `strata.service has ${line}`);
  assert.ok(!/^MemoryDenyWriteExecute=yes/m.test(unit), "V8's JIT needs W+X memory");
});

test("sysusers.d makes the strata user and tmpfiles.d its folders, owned by it", { skip: has("systemd-sysusers") && has("systemd-tmpfiles") ? false : "needs systemd" }, (t) => {
  const root = mkdtempSync(join(tmpdir(), "strata-sysusers-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, "etc"));
  const users = spawnSync("systemd-sysusers", [`--root=${root}`, join(SYSTEMD, "strata.sysusers.conf")], { encoding: "utf8" });
  assert.equal(users.status, 0, users.stderr);
  const passwd = readFileSync(join(root, "etc/passwd"), "utf8");
  const entry = passwd.split("\n").find((l) => l.startsWith("strata:"));
  assert.ok(entry, passwd);
  assert.match(entry, /:\/var\/lib\/strata:\/usr\/sbin\/nologin$/);
  const uid = Number(entry.split(":")[2]);
  const dirs = spawnSync("systemd-tmpfiles", [`--root=${root}`, "--create", join(SYSTEMD, "strata.tmpfiles.conf")], { encoding: "utf8" });
  assert.equal(dirs.status, 0, dirs.stderr);
  for (const d of ["etc/strata", "var/lib/strata"]) {
    const st = statSync(join(root, d));
    assert.equal(st.uid, uid, `${d} owned by strata`);
    assert.equal(st.mode & 0o777, 0o750, d);
  }
});
