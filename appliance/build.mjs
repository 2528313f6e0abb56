#!/usr/bin/env node
// `npm run appliance -- --arch amd64|arm64`: a self-contained bundle (Node 24 for that architecture from the
// npm registry's node-linux-<arch> package, the built app, production node_modules, the sd_notify addon) and a
// Debian package with the systemd units. Output: appliance/out/strata-<version>-<arch>.tar.gz and
// appliance/out/strata_<version>_<arch>.deb.
//   --arch amd64|arm64   target (default: this machine's)
//   --dist <dir>         use an already compiled tree (tsc output with core/, plugins/, appliance/) instead of compiling
//   --out <dir>          default appliance/out
//   --fast               no tarball and an uncompressed .deb (the CI test's chroot install)
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { arch: { type: "string" }, dist: { type: "string" }, out: { type: "string" }, fast: { type: "boolean" } } });
const arch = values.arch ?? (process.arch === "arm64" ? "arm64" : "amd64");
const NPM_ARCH = { amd64: "x64", arm64: "arm64" };
const CC = { amd64: process.arch === "x64" ? "gcc" : "x86_64-linux-gnu-gcc", arm64: process.arch === "arm64" ? "gcc" : "aarch64-linux-gnu-gcc" };
if (!NPM_ARCH[arch]) fail(`--arch ${arch}: use amd64 or arm64`);
const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
const version = pkg.version;
const nodeVersion = JSON.parse(readFileSync(join(repo, "node_modules/node/package.json"), "utf8")).version;
const out = resolve(values.out ?? join(repo, "appliance/out"));
const cache = join(repo, "appliance/.cache");
// Staging lives outside the repository: tsc's include covers appliance/, and staged node_modules hold .d.ts files.
const stage = mkdtempSync(join(tmpdir(), `strata-appliance-${arch}-`));
process.on("exit", () => rmSync(stage, { recursive: true, force: true }));
const lib = join(stage, "root/usr/lib/strata");
const app = join(lib, "app");
const started = Date.now();

function fail(msg) {
  console.error(`appliance: ${msg}`);
  process.exit(1);
}
function step(msg) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}`);
}
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"], ...opts });
  if (r.error) fail(`${cmd} cannot run (${r.error.message}); install it (see appliance/README.md)`);
  if (r.status !== 0) fail(`${cmd} ${args.join(" ")} exited ${r.status}`);
  return r;
}

mkdirSync(out, { recursive: true });
mkdirSync(join(lib, "bin"), { recursive: true });
mkdirSync(cache, { recursive: true });

// 1. The app: tsc output of core/, plugins/ and appliance/ (tests stay out).
let dist = values.dist && resolve(values.dist);
if (!dist) {
  step("compiling (tsc)");
  dist = join(stage, "dist");
  const r = spawnSync(join(repo, "node_modules/.bin/tsc"), ["-p", repo, "--outDir", dist, "--sourceMap", "false", "--declaration", "false"], { stdio: "inherit" });
  if (!existsSync(join(dist, "core/cli/main.js"))) fail(`tsc produced no core/cli/main.js (exit ${r.status})`);
}
for (const part of ["core", "plugins", "appliance"]) {
  if (!existsSync(join(dist, part))) fail(`${dist}/${part} is missing: compile first or drop --dist`);
  cpSync(join(dist, part), join(app, "dist", part), { recursive: true, filter: (src) => !src.endsWith(".d.ts") && !src.endsWith(".map") });
}
cpSync(join(repo, "appliance/README.md"), join(app, "appliance/README.md"));
writeFileSync(join(app, "package.json"), JSON.stringify({ ...pkg, scripts: {}, devDependencies: {} }, null, 2) + "\n");
cpSync(join(repo, "package-lock.json"), join(app, "package-lock.json"));

// 2. Production node_modules for the target (native modules ship linux-arm64/x64 prebuilds; no install scripts run).
step(`production node_modules (npm ci --omit=dev, ${arch})`);
run("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--os=linux", `--cpu=${NPM_ARCH[arch]}`, "--loglevel=error"], { cwd: app });
rmSync(join(app, "package-lock.json"));

// 3. Node runtime for the target from the npm registry (node-linux-<arch>), cached by version.
const runtime = join(cache, `node-linux-${NPM_ARCH[arch]}-${nodeVersion}`);
if (!existsSync(join(runtime, "bin/node"))) {
  step(`fetching node-linux-${NPM_ARCH[arch]}@${nodeVersion} (npm pack)`);
  rmSync(runtime, { recursive: true, force: true });
  mkdirSync(runtime, { recursive: true });
  const packed = spawnSync("npm", ["pack", `node-linux-${NPM_ARCH[arch]}@${nodeVersion}`, "--silent", "--pack-destination", runtime], { encoding: "utf8" });
  if (packed.status !== 0) fail(`npm pack node-linux-${NPM_ARCH[arch]}@${nodeVersion} failed: ${packed.stderr}`);
  run("tar", ["-xzf", join(runtime, packed.stdout.trim().split("\n").pop()), "-C", runtime, "--strip-components=1"]);
}
cpSync(join(runtime, "bin/node"), join(lib, "bin/node"));
chmodSync(join(lib, "bin/node"), 0o755);

// 4. The sd_notify N-API addon, compiled for the target against the runtime's own headers.
step(`sd_notify addon (${CC[arch]})`);
run(CC[arch], ["-shared", "-fPIC", "-O2", "-Wall", "-I", join(runtime, "include/node"), join(repo, "appliance/sd-notify/sd_notify.c"), "-o", join(app, "dist/appliance/sd-notify/sd_notify.node")]);

// 5. Launcher and file system layout.
writeFileSync(join(lib, "bin/strata"), `#!/bin/sh\nexec /usr/lib/strata/bin/node /usr/lib/strata/app/dist/core/cli/main.js "$@"\n`, { mode: 0o755 });
if (!values.fast) {
  step(`bundle strata-${version}-${arch}.tar.gz`);
  run("tar", ["-czf", join(out, `strata-${version}-${arch}.tar.gz`), "-C", join(stage, "root/usr/lib"), "strata"]);
}

const root = join(stage, "root");
mkdirSync(join(root, "usr/bin"), { recursive: true });
symlinkSync("/usr/lib/strata/bin/strata", join(root, "usr/bin/strata"));
for (const [from, to] of [
  ["systemd/strata.service", "lib/systemd/system/strata.service"],
  ["systemd/strata-firstboot.service", "lib/systemd/system/strata-firstboot.service"],
  ["systemd/strata.sysusers.conf", "usr/lib/sysusers.d/strata.conf"],
  ["systemd/strata.tmpfiles.conf", "usr/lib/tmpfiles.d/strata.conf"],
]) {
  mkdirSync(dirname(join(root, to)), { recursive: true });
  cpSync(join(repo, from), join(root, to));
}
mkdirSync(join(root, "DEBIAN"), { recursive: true });
const size = Number(spawnSync("du", ["-sk", join(root, "usr"), join(root, "lib")], { encoding: "utf8" }).stdout.split("\n").filter(Boolean).reduce((n, l) => n + Number(l.split("\t")[0]), 0));
writeFileSync(join(root, "DEBIAN/control"), [
  "Package: strata",
  `Version: ${version}`,
  `Architecture: ${arch}`,
  "Maintainer: Strata <strata@localhost>",
  `Installed-Size: ${size}`,
  "Depends: libc6 (>= 2.28), libstdc++6, libgcc-s1",
  "Recommends: systemd",
  "Section: net",
  "Priority: optional",
  "Description: Strata nested IoT gateway (self-contained: bundles Node.js " + nodeVersion + ")",
  " One process per plant gateway speaking IoT Hub's MQTT, AMQP and HTTPS conventions,",
  " stacked parent over child; factory provisioning on first boot.",
  "",
].join("\n"));
writeFileSync(join(root, "DEBIAN/postinst"), `#!/bin/sh
set -e
# The gateway's user and folders: sysusers.d and tmpfiles.d when systemd is there, plain tools otherwise (a chroot).
if command -v systemd-sysusers >/dev/null 2>&1; then systemd-sysusers strata.conf; \\
elif ! getent passwd strata >/dev/null; then useradd --system --user-group --home-dir /var/lib/strata --no-create-home --shell /usr/sbin/nologin strata; fi
if command -v systemd-tmpfiles >/dev/null 2>&1; then systemd-tmpfiles --create strata.conf; \\
else install -d -m 0750 -o strata -g strata /etc/strata /var/lib/strata; fi
if [ "$1" = configure ] && command -v systemctl >/dev/null 2>&1; then
  systemctl enable strata.service strata-firstboot.service >/dev/null 2>&1 || true
  if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
fi
exit 0
`, { mode: 0o755 });
writeFileSync(join(root, "DEBIAN/prerm"), `#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then systemctl stop strata.service strata-firstboot.service || true; fi
exit 0
`, { mode: 0o755 });
writeFileSync(join(root, "DEBIAN/postrm"), `#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
  if command -v systemctl >/dev/null 2>&1; then systemctl disable strata.service strata-firstboot.service >/dev/null 2>&1 || true; fi
fi
# Config and state (keys, the durable store) are kept unless purged.
if [ "$1" = purge ]; then rm -rf /var/lib/strata /etc/strata; fi
exit 0
`, { mode: 0o755 });
const deb = join(out, `strata_${version}_${arch}.deb`);
step(`debian package ${deb}`);
run("dpkg-deb", ["--root-owner-group", values.fast ? "-Znone" : "-Zxz", ...(values.fast ? [] : ["-z6", "--threads-max=0"]), "--build", root, deb], { stdio: ["ignore", "ignore", "inherit"] });
rmSync(stage, { recursive: true, force: true });
step(`done: ${values.fast ? "" : `${join(out, `strata-${version}-${arch}.tar.gz`)} and `}${deb}`);
