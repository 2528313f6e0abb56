// `strata pki …`: a hierarchy root CA, server and device certificates from this gateway's edge CA, what this
// gateway holds, and trust bundles (root CA rollover: docs/pki.md).
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { StrataConfig } from "../config/schema.js";
import { readSecret } from "../config/secret.js";
import { StrataError } from "../errors.js";
import {
  certFacts,
  createRootCa,
  issueCaCert,
  issueDeviceCert,
  issueServerCert,
  splitPem,
  KEY_TYPES,
  type CaMaterial,
  type KeyType,
} from "../pki/certs.js";
import { CERT_MODE, KEY_MODE, writeFileAtomic } from "../pki/files.js";
import { resolveConfig } from "./context.js";
import type { Output } from "./output.js";

export const PKI_USAGE = `strata pki init [--out <dir>] [--cn <name>] [--key-type ${KEY_TYPES.join("|")}] [--days 3650]
      a hierarchy root CA: <dir>/root-ca.cert.pem, root-ca.key.pem (0600), trust-bundle.pem (default ./strata-root-ca)
strata pki issue-edge-ca <gatewayId> --ca-dir <dir> [--out <dir>] [--key-type …] [--days 1825]
      an edge CA for a gateway, issued by the root CA in --ca-dir (the root gateway's own; children get theirs from child add)
strata pki issue-server [--hostname <name>]… [--ip <addr>]… [--out <dir>] [--key-type …] [--days 365]
      a server certificate from this gateway's edge CA (SAN = the names and addresses; default [tls] names)
strata pki issue-device <deviceId> [--out <dir>] [--ca-dir <dir>] [--key-type …] [--days 365]
      a device certificate (CN = deviceId, clientAuth) for X.509 device authentication
strata pki show
      this gateway's certificates: subject, issuer, key type, expiry, names, thumbprints
strata pki trust-bundle [--add <pem file>]… [--remove <sha256>]… [--write]
      print this gateway's trust bundle; --add/--remove roots (a rollover), --write to [tls] ca_file (hot-reloaded)
  (common: --config <file>; the written key files are mode 0600)`;

const ROOT_FILES = { cert: "root-ca.cert.pem", key: "root-ca.key.pem", bundle: "trust-bundle.pem" } as const;

function keyTypeOf(value: string | undefined): KeyType | undefined {
  if (value === undefined) return undefined;
  if (!(KEY_TYPES as readonly string[]).includes(value)) {
    throw new StrataError("STRATA_PKI_KEY_TYPE_UNSUPPORTED", `--key-type ${value} is not supported; use one of ${KEY_TYPES.join(", ")}`);
  }
  return value as KeyType;
}

function daysOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new StrataError("STRATA_CLI_BAD_ARGUMENT", `--days ${value} must be a whole number of days, at least 1`);
  return n;
}

/** Refuses to overwrite a CA key: losing a root key means re-issuing the whole tree. */
function refuseOverwrite(path: string): void {
  if (existsSync(path)) {
    throw new StrataError("STRATA_PKI_EXISTS", `${path} exists; a CA is never overwritten (its key signs the tree): choose another --out, or move the old one away first`);
  }
}

function caFromDir(dir: string): CaMaterial {
  const cert = join(dir, ROOT_FILES.cert);
  const key = join(dir, ROOT_FILES.key);
  return { cert: readFileSync(cert, "utf8"), key: readSecret(key, `${key}`) };
}

function edgeCaOf(config: StrataConfig): CaMaterial {
  const { edge_ca_cert_file: certFile, edge_ca_key_file: keyFile } = config.tls;
  if (!certFile || !keyFile) {
    throw new StrataError("STRATA_PKI_NO_CA", "this gateway has no edge CA: set [tls] edge_ca_cert_file and edge_ca_key_file (strata pki issue-edge-ca), or pass --ca-dir with a CA");
  }
  return { cert: readFileSync(certFile, "utf8"), key: readSecret(keyFile, "tls.edge_ca_key_file") };
}

async function writeSet(out: string, files: [string, string, number][]): Promise<string[]> {
  mkdirSync(out, { recursive: true, mode: 0o755 });
  const written: string[] = [];
  for (const [name, content, mode] of files) {
    const path = join(out, name);
    await writeFileAtomic(path, content, mode);
    written.push(`${path}${mode === KEY_MODE ? " (0600)" : ""}`);
  }
  return written;
}

function describeCert(label: string, pem: string): string {
  const f = certFacts(pem);
  const days = Math.floor((f.notAfter.getTime() - Date.now()) / 86_400_000);
  const names = [...f.dnsNames, ...f.ips];
  return [
    `${label}: CN=${f.commonName}${f.isCa ? " (CA)" : ""}${f.selfSigned ? " self-signed" : ""}`,
    `    issuer ${f.issuer.replace(/\n/g, ", ")}`,
    `    key ${f.keyType}, valid until ${f.notAfter.toISOString()} (${days} days)`,
    ...(names.length ? [`    names ${names.join(", ")}`] : []),
    `    sha256 ${f.sha256}`,
  ].join("\n");
}

/** `strata pki …`; returns the exit code. */
export async function pkiCommand(args: readonly string[], out: Output): Promise<number> {
  const [verb, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: "string" }, out: { type: "string" }, cn: { type: "string" }, "key-type": { type: "string" },
      days: { type: "string" }, "ca-dir": { type: "string" }, hostname: { type: "string", multiple: true },
      ip: { type: "string", multiple: true }, add: { type: "string", multiple: true }, remove: { type: "string", multiple: true },
      write: { type: "boolean" },
    },
  });
  const keyType = keyTypeOf(values["key-type"]);
  const days = daysOf(values.days);
  const config = async () => (await resolveConfig({ config: values.config }, { prepareEmbedded: !values.config })).config;
  switch (verb) {
    case "init": {
      const dir = resolve(values.out ?? "strata-root-ca");
      refuseOverwrite(join(dir, ROOT_FILES.key));
      const root = await createRootCa({ commonName: values.cn ?? "Strata root CA", ...(keyType ? { keyType } : {}), ...(days ? { days } : {}) });
      const written = await writeSet(dir, [[ROOT_FILES.key, root.key, KEY_MODE], [ROOT_FILES.cert, root.cert, CERT_MODE], [ROOT_FILES.bundle, root.cert, CERT_MODE]]);
      out.info(`root CA created:\n  ${written.join("\n  ")}\n${describeCert("root", root.cert)}\nkeep root-ca.key.pem offline; give every gateway and device trust-bundle.pem`);
      return 0;
    }
    case "issue-edge-ca": {
      const gatewayId = positionals[0];
      if (!gatewayId || !values["ca-dir"]) break;
      const ca = caFromDir(resolve(values["ca-dir"]));
      const dir = resolve(values.out ?? `${gatewayId}-edge-ca`);
      refuseOverwrite(join(dir, "edge-ca.key.pem"));
      const edge = await issueCaCert(ca, { commonName: `Strata edge CA ${gatewayId}`, ...(keyType ? { keyType } : {}), ...(days ? { days } : {}) });
      const written = await writeSet(dir, [["edge-ca.key.pem", edge.key, KEY_MODE], ["edge-ca.cert.pem", edge.chain, CERT_MODE]]);
      out.info(`edge CA for ${gatewayId}:\n  ${written.join("\n  ")}\n${describeCert("edge CA", edge.cert)}\nset [tls] edge_ca_cert_file and edge_ca_key_file to these, then: strata pki issue-server`);
      return 0;
    }
    case "issue-server": {
      const c = await config();
      const hostnames = values.hostname ?? [c.hostname].filter((h) => !/^[\d.:]+$/.test(h));
      const ips = values.ip ?? [c.listen.address, c.hostname].filter((h) => /^[\d.]+$|:/.test(h) && h !== "0.0.0.0" && h !== "::");
      const ca = values["ca-dir"] ? caFromDir(resolve(values["ca-dir"])) : edgeCaOf(c);
      const server = await issueServerCert(ca, { hostnames, ips: [...new Set(ips)], ...(keyType ? { keyType } : {}), ...(days ? { days } : {}) });
      const dir = resolve(values.out ?? ".");
      const written = await writeSet(dir, [["server.key.pem", server.key, KEY_MODE], ["server.chain.pem", server.chain, CERT_MODE]]);
      out.info(`server certificate:\n  ${written.join("\n  ")}\n${describeCert("server", server.cert)}\nto use it, copy it over [tls] key_file then cert_file (${c.tls.key_file}, ${c.tls.cert_file}): the running gateway reloads them`);
      return 0;
    }
    case "issue-device": {
      const deviceId = positionals[0];
      if (!deviceId) break;
      const ca = values["ca-dir"] ? caFromDir(resolve(values["ca-dir"])) : edgeCaOf(await config());
      const device = await issueDeviceCert(ca, deviceId, { ...(keyType ? { keyType } : {}), ...(days ? { days } : {}) });
      const dir = resolve(values.out ?? ".");
      const written = await writeSet(dir, [[`${deviceId}.key.pem`, device.key, KEY_MODE], [`${deviceId}.cert.pem`, device.cert, CERT_MODE], [`${deviceId}.chain.pem`, device.chain, CERT_MODE]]);
      out.info(`device certificate for ${deviceId}:\n  ${written.join("\n  ")}\n${describeCert("device", device.cert)}\nregister it by thumbprint (sha256 above), or as CA-signed when its issuer is in the trust bundle`);
      return 0;
    }
    case "show": {
      const c = await config();
      const lines = [describeCert("server", readFileSync(c.tls.cert_file, "utf8"))];
      if (c.tls.edge_ca_cert_file) lines.push(describeCert("edge CA", readFileSync(c.tls.edge_ca_cert_file, "utf8")));
      splitPem(readFileSync(c.tls.ca_file, "utf8")).forEach((pem, i) => lines.push(describeCert(`trusted root ${i + 1}`, pem)));
      out.info(lines.join("\n"));
      return 0;
    }
    case "trust-bundle": {
      const c = await config();
      let roots = splitPem(readFileSync(c.tls.ca_file, "utf8"));
      for (const file of values.add ?? []) {
        const added = splitPem(readFileSync(resolve(file), "utf8"));
        if (!added.length) throw new StrataError("STRATA_PKI_INVALID_PEM", `${file} holds no PEM certificate; pass the new root's certificate file`);
        for (const pem of added) if (!roots.some((r) => certFacts(r).sha256 === certFacts(pem).sha256)) roots.push(pem);
      }
      for (const sha of values.remove ?? []) {
        const want = sha.replace(/:/g, "").toUpperCase();
        const kept = roots.filter((r) => certFacts(r).sha256 !== want);
        if (kept.length === roots.length) throw new StrataError("STRATA_PKI_NOT_FOUND", `no certificate with sha256 ${sha} in the trust bundle; see strata pki show`);
        roots = kept;
      }
      if (!roots.length) throw new StrataError("STRATA_PKI_INVALID_PEM", "the trust bundle would be empty; keep at least one root");
      const bundle = roots.map((r) => r + "\n").join("");
      if (values.write) {
        await writeFileAtomic(c.tls.ca_file, bundle, CERT_MODE);
        out.info(`trust bundle written to ${c.tls.ca_file} (${roots.length} root(s)); a running gateway reloads it`);
      } else {
        out.info(bundle.trimEnd());
      }
      return 0;
    }
  }
  out.error(PKI_USAGE);
  return 2;
}
