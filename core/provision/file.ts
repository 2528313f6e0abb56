// The provisioning file a factory flashes (or an operator puts on a USB stick), and where first boot looks for it.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import { z } from "zod";
import { StrataError } from "../errors.js";

/** Its name on a USB stick or the boot partition. */
export const PROVISION_FILE_NAME = "strata-provision.toml";

const port = z.int().min(1).max(65535);
export const provisioningFileSchema = z.strictObject({
  hub: z.string().min(1),
  /** The gateway's id; default the machine's host name (first label). */
  device_id: z.string().min(1).optional(),
  /** Its TLS name (certificate SAN, `hostname`); default device_id. */
  hostname: z.string().min(1).optional(),
  /** Its IP address (SAN and `[listen] address`). */
  address: z.string().min(1).optional(),
  data_dir: z.string().min(1).default("/var/lib/strata"),
  /** Where the config, keys and certificates are installed. */
  config_dir: z.string().min(1).default("/etc/strata"),
  listen: z.strictObject({ address: z.string().optional(), mqtt: z.int().min(0).max(65535).optional(), amqp: z.int().min(0).max(65535).optional(), https: z.int().min(0).max(65535).optional() }).optional(),
  parent: z.strictObject({
    hostname: z.string().min(1),
    address: z.string().min(1).optional(),
    https_port: port.default(443),
    /** The hierarchy's root CA (PEM), to verify the parent before trusting its answer. */
    trust_bundle_file: z.string().min(1),
  }),
  attestation: z.discriminatedUnion("type", [
    z.strictObject({
      type: z.literal("enrollment-group"),
      group: z.string().min(1),
      /** The key derived for this device (`strata enrollment derive`): the group key stays at the root. */
      key_file: z.string().min(1).optional(),
      /** The group key itself, on a trusted factory line only: the gateway derives its key and never stores this. */
      group_key_file: z.string().min(1).optional(),
    }).refine((a) => (a.key_file === undefined) !== (a.group_key_file === undefined), { message: "set exactly one of key_file (the derived key, recommended) or group_key_file", path: ["key_file"] }),
    z.strictObject({ type: z.literal("symmetric-key"), key_file: z.string().min(1) }),
    z.strictObject({ type: z.literal("x509"), cert_file: z.string().min(1), key_file: z.string().min(1) }),
  ]),
});
export type ProvisioningFile = z.output<typeof provisioningFileSchema> & { device_id: string; hostname: string; source: string; baseDir: string };

export interface LocateOptions {
  /** `--file`: wins over everything. */
  file?: string;
  /** The kernel command line; default /proc/cmdline. `strata.provision=<path>` names the file. */
  cmdline?: string;
  /** Folders whose mounted sticks are searched (two levels down) for strata-provision.toml. */
  removableRoots?: readonly string[];
  /** Fixed places, in order (the boot partition, then the image). */
  fixed?: readonly string[];
}

export interface Located {
  path: string;
  /** "--file", "kernel command line", "removable media" or "image". */
  from: string;
}

export const DEFAULT_REMOVABLE_ROOTS = ["/media", "/run/media", "/mnt"] as const;
export const DEFAULT_FIXED = ["/boot/efi/strata-provision.toml", "/boot/firmware/strata-provision.toml", "/boot/strata-provision.toml", "/etc/strata/provision.toml"] as const;

/** Finds the provisioning file: --file, then `strata.provision=` on the kernel command line, a USB stick, the boot partition, the image. */
export function locateProvisioningFile(o: LocateOptions = {}): Located | undefined {
  if (o.file) return { path: resolve(o.file), from: "--file" };
  let cmdline = "";
  try {
    cmdline = readFileSync(o.cmdline ?? "/proc/cmdline", "utf8");
  } catch {
    // no /proc (a container build step): only the other places count
  }
  const m = /(?:^|\s)strata\.provision=(\S+)/.exec(cmdline);
  if (m) return { path: resolve(m[1]!), from: "kernel command line" };
  for (const root of o.removableRoots ?? DEFAULT_REMOVABLE_ROOTS) {
    const found = findBelow(root, 2);
    if (found) return { path: found, from: "removable media" };
  }
  for (const p of o.fixed ?? DEFAULT_FIXED) if (existsSync(p)) return { path: p, from: "image" };
  return undefined;
}

function findBelow(dir: string, depth: number): string | undefined {
  const direct = join(dir, PROVISION_FILE_NAME);
  if (existsSync(direct)) return direct;
  if (depth === 0) return undefined;
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return undefined;
  }
  for (const n of names) {
    const sub = join(dir, n);
    try {
      if (!statSync(sub).isDirectory()) continue;
    } catch {
      continue;
    }
    const found = findBelow(sub, depth - 1);
    if (found) return found;
  }
  return undefined;
}

/** Reads and validates the file; relative paths in it resolve against its folder. */
export function readProvisioningFile(path: string): { file: ProvisioningFile; sha256: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new StrataError("STRATA_PROVISION_FILE", `provisioning file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}); check the path (--file, strata.provision= on the kernel command line)`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    throw new StrataError("STRATA_PROVISION_FILE", `provisioning file ${path} is not valid TOML: ${(err as Error).message.split("\n")[0]}`, { cause: err });
  }
  const parsed = provisioningFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new StrataError("STRATA_PROVISION_FILE", `provisioning file ${path} is invalid: ${parsed.error.issues.map((i) => `${i.path.join(".") || "file"} ${i.message}`).join("; ")}`);
  }
  const baseDir = dirname(resolve(path));
  const d = parsed.data;
  const deviceId = d.device_id ?? osHostname().split(".")[0]!;
  const at = (p: string) => resolve(baseDir, p);
  const a = d.attestation;
  const attestation: typeof a = a.type === "x509"
    ? { ...a, cert_file: at(a.cert_file), key_file: at(a.key_file) }
    : a.type === "symmetric-key"
      ? { ...a, key_file: at(a.key_file) }
      : { ...a, ...(a.key_file ? { key_file: at(a.key_file) } : {}), ...(a.group_key_file ? { group_key_file: at(a.group_key_file) } : {}) };
  return {
    file: {
      ...d,
      device_id: deviceId,
      hostname: d.hostname ?? deviceId,
      parent: { ...d.parent, trust_bundle_file: at(d.parent.trust_bundle_file) },
      attestation,
      source: resolve(path),
      baseDir,
    },
    sha256: createHash("sha256").update(text).digest("hex"),
  };
}
