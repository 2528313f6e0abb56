#!/usr/bin/env node
// `npm run image -- --arch amd64`: a flashable raw disk image, built without loop devices and run by hand, never
// in CI (it downloads a kernel and a Debian base, a few minutes). Steps, each printed with elapsed time:
//   1. the .deb (appliance/build.mjs), unless --deb is given
//   2. a Debian bookworm root file system with mmdebstrap: systemd, kernel, networking, the strata package,
//      strata.service and strata-firstboot.service enabled
//   3. an ext4 file system image from that folder (mkfs.ext4 -d: no mount, no loop device)
//   4. an EFI system partition (FAT, mtools: no mount) with systemd-boot, the kernel and initrd
//   5. a GPT disk image (sfdisk on a plain file) with both partitions copied in at their offsets (dd)
// Output: appliance/out/strata-<version>-<arch>.img. Options: --arch amd64|arm64, --size <MiB> (root, default
// 2048), --deb <file>, --out <dir>, --mirror <url>. Needs: mmdebstrap, e2fsprogs, dosfstools, mtools, fdisk.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { randomUUID } from "node:crypto";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { arch: { type: "string" }, size: { type: "string" }, deb: { type: "string" }, out: { type: "string" }, mirror: { type: "string" } } });
const arch = values.arch ?? "amd64";
const EFI = { amd64: { kernel: "linux-image-amd64", boot: "BOOTX64.EFI", sdboot: "systemd-bootx64.efi" }, arm64: { kernel: "linux-image-arm64", boot: "BOOTAA64.EFI", sdboot: "systemd-bootaa64.efi" } }[arch];
if (!EFI) fail(`--arch ${arch}: use amd64 or arm64`);
const version = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).version;
const out = resolve(values.out ?? join(repo, "appliance/out"));
const rootMiB = Number(values.size ?? 2048);
const espMiB = 256;
const started = Date.now();
// The root file system is built outside the repository (tsc's include covers appliance/; mmdebstrap mounts /proc
// in it while it runs), in /var/tmp: it is large.
const work = mkdtempSync(join(process.env.TMPDIR ?? "/var/tmp", `strata-image-${arch}-`));

function fail(msg) { console.error(`image: ${msg}`); process.exit(1); }
function step(msg) { console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(7)} s] ${msg}`); }
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"], ...opts });
  if (r.error) fail(`${cmd} cannot run (${r.error.message}); apt-get install -y mmdebstrap e2fsprogs dosfstools mtools fdisk`);
  if (r.status !== 0) fail(`${cmd} ${args.join(" ")} exited ${r.status}`);
  return r;
}
if (process.getuid?.() !== 0) fail("run as root (mmdebstrap --mode=root writes a root-owned tree)");
for (const c of ["mmdebstrap", "mkfs.ext4", "mkfs.vfat", "mcopy", "sfdisk"]) if (spawnSync("sh", ["-c", `command -v ${c}`]).status !== 0) fail(`${c} is missing: apt-get install -y mmdebstrap e2fsprogs dosfstools mtools fdisk`);

mkdirSync(out, { recursive: true });
// Never remove a tree something is still mounted in (mmdebstrap's /proc, /dev/pts, /dev/shm after a crash).
process.on("exit", () => {
  if (readFileSync("/proc/mounts", "utf8").includes(work)) console.error(`image: ${work} still has mounts; unmount them, then remove it`);
  else rmSync(work, { recursive: true, force: true });
});

// 1. The package.
let deb = values.deb && resolve(values.deb);
if (!deb) {
  step("building the .deb (npm run appliance)");
  run(process.execPath, [join(repo, "appliance/build.mjs"), "--arch", arch, "--out", out]);
  deb = join(out, `strata_${version}_${arch}.deb`);
}
if (!existsSync(deb)) fail(`${deb} does not exist`);

// 2. Root file system.
const rootfs = join(work, "rootfs");
const rootUuid = randomUUID();
const partUuid = { esp: randomUUID(), root: randomUUID() };
step(`root file system (mmdebstrap bookworm ${arch}: systemd, ${EFI.kernel}, strata)`);
run("mmdebstrap", [
  "--variant=minbase", "--mode=root", `--architectures=${arch}`,
  `--include=systemd-sysv,udev,${EFI.kernel},systemd-boot-efi,initramfs-tools,ifupdown,isc-dhcp-client,iproute2,ca-certificates,chrony,openssh-server,dosfstools`,
  `--customize-hook=copy-in ${deb} /tmp`,
  `--customize-hook=chroot "$1" dpkg -i /tmp/${deb.split("/").pop()}`,
  `--customize-hook=rm "$1/tmp/${deb.split("/").pop()}"`,
  `--customize-hook=chroot "$1" systemctl enable strata.service strata-firstboot.service chrony.service`,
  // The ESP carries the per-device provisioning file (copied there at flashing time), readable by strata only.
  `--customize-hook=mkdir -p "$1/boot/efi" && printf 'PARTUUID=${partUuid.root} / ext4 errors=remount-ro 0 1\\nPARTUUID=${partUuid.esp} /boot/efi vfat uid=%s,gid=%s,umask=0077 0 2\\n' $(chroot "$1" id -u strata) $(chroot "$1" id -g strata) > "$1/etc/fstab"`,
  `--customize-hook=printf 'auto lo\\niface lo inet loopback\\nallow-hotplug eth0\\niface eth0 inet dhcp\\n' > "$1/etc/network/interfaces"`,
  `--customize-hook=echo strata > "$1/etc/hostname"`,
  "bookworm", rootfs, ...(values.mirror ? [values.mirror] : []),
]);

// 3. ext4 image of the root, no loop device.
const rootImg = join(work, "root.ext4");
step(`ext4 root file system (${rootMiB} MiB, mkfs.ext4 -d)`);
run("mkfs.ext4", ["-q", "-F", "-L", "strata-root", "-U", rootUuid, "-d", rootfs, rootImg, `${rootMiB}M`]);

// 4. ESP with systemd-boot, kernel and initrd (mtools: no mount).
const espImg = join(work, "esp.vfat");
step(`EFI system partition (${espMiB} MiB, systemd-boot)`);
run("mkfs.vfat", ["-F", "32", "-n", "STRATA-ESP", "-C", espImg, String(espMiB * 1024)]);
const boot = readdirSync(join(rootfs, "boot"));
const vmlinuz = boot.find((f) => f.startsWith("vmlinuz-"));
const initrd = boot.find((f) => f.startsWith("initrd.img-"));
if (!vmlinuz || !initrd) fail(`no kernel or initrd in the root's /boot (${boot.join(", ")})`);
const mt = (args) => run(args[0], args.slice(1), { env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } });
for (const d of ["::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries"]) mt(["mmd", "-i", espImg, d]);
mt(["mcopy", "-i", espImg, join(rootfs, "usr/lib/systemd/boot/efi", EFI.sdboot), `::/EFI/BOOT/${EFI.boot}`]);
mt(["mcopy", "-i", espImg, join(rootfs, "boot", vmlinuz), "::/vmlinuz"]);
mt(["mcopy", "-i", espImg, join(rootfs, "boot", initrd), "::/initrd.img"]);
writeFileSync(join(work, "loader.conf"), "default strata.conf\ntimeout 0\n");
writeFileSync(join(work, "strata.conf"), `title Strata\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=PARTUUID=${partUuid.root} rw quiet\n`);
mt(["mcopy", "-i", espImg, join(work, "loader.conf"), "::/loader/loader.conf"]);
mt(["mcopy", "-i", espImg, join(work, "strata.conf"), "::/loader/entries/strata.conf"]);

// 5. GPT disk: ESP at 1 MiB, root after it.
const img = join(out, `strata-${version}-${arch}.img`);
const totalMiB = 1 + espMiB + rootMiB + 1;
step(`disk image ${img} (${totalMiB} MiB, GPT)`);
rmSync(img, { force: true });
run("truncate", ["-s", `${totalMiB}M`, img]);
const layout = `label: gpt\nstart=1MiB, size=${espMiB}MiB, type=uefi, uuid=${partUuid.esp}, name=esp\nstart=${1 + espMiB}MiB, size=${rootMiB}MiB, type=linux, uuid=${partUuid.root}, name=root\n`;
run("sfdisk", ["--quiet", img], { input: layout, stdio: ["pipe", "inherit", "inherit"] });
run("dd", [`if=${espImg}`, `of=${img}`, "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]);
run("dd", [`if=${rootImg}`, `of=${img}`, "bs=1M", `seek=${1 + espMiB}`, "conv=notrunc,sparse", "status=none"]);
rmSync(work, { recursive: true, force: true });
step(`done: ${img} (${Math.round(statSync(img).size / 1024 / 1024)} MiB; ESP offset 1 MiB for mcopy -i ${img}@@1M)`);
