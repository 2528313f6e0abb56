// The .deb installs into a fresh Debian bookworm chroot (mmdebstrap) and `strata check` runs there as the
// strata user. Bounded (about 2 minutes: a minbase bootstrap plus an uncompressed package build).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { ensureDevPki } from "../../../core/pki/index.js";

const DIST = resolve(__dirname, "../../..");
const REPO = resolve(DIST, "..");
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const missing = ["mmdebstrap", "dpkg-deb", "gcc"].filter((c) => !has(c));
const skip = missing.length ? `needs ${missing.join(", ")} (apt-get install -y mmdebstrap dpkg-dev gcc)` : process.getuid?.() !== 0 ? "needs root (mmdebstrap --mode=root)" : false;

test("the .deb installs into an mmdebstrap chroot of Debian bookworm and strata check runs there", { skip, timeout: 300_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), "strata-deb-"));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const arch = process.arch === "arm64" ? "arm64" : "amd64";
  // 1. The package, from this test's own compiled tree.
  const build = spawnSync(join(REPO, "node_modules/.bin/node"), [join(REPO, "appliance/build.mjs"), "--arch", arch, "--dist", DIST, "--out", join(work, "out"), "--fast"], { encoding: "utf8", timeout: 120_000 });
  assert.equal(build.status, 0, `build failed:\n${build.stdout}\n${build.stderr}`);
  const deb = join(work, "out", `strata_0.1.0_${arch}.deb`);

  // 2. A root gateway's config and dev PKI for /etc/strata, ports 0 (no privilege needed for check).
  const etc = join(work, "etc");
  const pki = await ensureDevPki(join(etc, "pki"), { hostnames: ["localhost"], ips: ["127.0.0.1"] });
  writeFileSync(join(etc, "owner.key"), "b3duZXIta2V5LWZvci10aGUtY2hyb290LXRlc3QtMTIzNA==\n", { mode: 0o600 });
  const rel = (p: string) => `/etc/strata/${p.slice(etc.length + 1)}`;
  writeFileSync(join(etc, "strata.toml"), [
    `hub = "plant"`, `device_id = "root"`, `hostname = "localhost"`, `data_dir = "/var/lib/strata"`,
    `[tls]`, `cert_file = "${rel(pki.paths.serverChain)}"`, `key_file = "${rel(pki.paths.serverKey)}"`, `ca_file = "${rel(pki.paths.trustBundle)}"`,
    `[listen]`, `address = "127.0.0.1"`, `mqtt = 0`, `amqp = 0`, `https = 0`,
    `[service]`, `owner_key_file = "/etc/strata/owner.key"`,
  ].join("\n") + "\n");

  // 3. Bootstrap, install, check as the gateway's user.
  const script = [
    "set -e",
    "chown -R strata:strata /etc/strata",
    "echo strata-units: $(ls /lib/systemd/system | grep strata | tr '\\n' ' ')",
    "su -s /bin/sh strata -c 'strata check --config /etc/strata/strata.toml' && echo strata-check-exit=0 || echo strata-check-exit=$?",
    "strata provision status",
  ].join("\n");
  writeFileSync(join(work, "inside.sh"), script);
  const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root", LANG: "C.UTF-8" };
  const boot = spawnSync("mmdebstrap", [
    "--variant=minbase", "--mode=root", "--quiet",
    `--customize-hook=copy-in ${deb} /tmp`,
    `--customize-hook=mv "$1/tmp/${deb.split("/").pop()}" "$1/tmp/strata.deb"`,
    `--customize-hook=copy-in ${join(work, "inside.sh")} /tmp`,
    `--customize-hook=chroot "$1" dpkg -i /tmp/strata.deb`,
    `--customize-hook=copy-in ${join(etc, "strata.toml")} ${join(etc, "owner.key")} ${join(etc, "pki")} /etc/strata`,
    `--customize-hook=chroot "$1" sh /tmp/inside.sh`,
    "bookworm", "/dev/null",
  ], { encoding: "utf8", env, timeout: 240_000 });
  const output = `${boot.stdout}\n${boot.stderr}`;
  assert.equal(boot.status, 0, `mmdebstrap failed:\n${output.slice(-4000)}`);
  assert.match(output, /strata-units: strata-firstboot\.service strata\.service/);
  assert.match(output, /ok\s+config\s+valid \(root, device root\)/);
  assert.match(output, /ok\s+store\s+\/var\/lib\/strata writable/, "the strata user owns its state folder");
  assert.match(output, /strata-check-exit=0/, output.slice(-3000));
  assert.match(output, /provision\s+no provisioning state/);
});
