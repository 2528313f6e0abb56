import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { StrataError } from "../errors.js";
import {
  certFacts,
  createRootCa,
  issueCaCert,
  issueServerCert,
  verifyIssued,
  type CaMaterial,
  type KeyType,
} from "./certs.js";

/** File names inside a dev PKI directory. Keys are mode 0600, everything else 0644. */
export const DEV_PKI_FILES = {
  rootCert: "root-ca.cert.pem",
  rootKey: "root-ca.key.pem",
  edgeCaCert: "edge-ca.cert.pem",
  edgeCaKey: "edge-ca.key.pem",
  serverCert: "server.cert.pem",
  serverKey: "server.key.pem",
  /** server certificate then edge CA: what the HTTPS, MQTT and AMQP listeners present. */
  serverChain: "server.chain.pem",
  /** the root CA: what devices and child gateways trust. */
  trustBundle: "trust-bundle.pem",
} as const;

export type DevPkiFile = keyof typeof DEV_PKI_FILES;

export interface DevPkiOptions {
  /** DNS names for the server certificate. Default ["localhost"]. */
  hostnames?: readonly string[];
  /** IP addresses for the server certificate. Default ["127.0.0.1"]. */
  ips?: readonly string[];
  keyType?: KeyType;
  /** Names the edge CA ("Strata edge CA <gatewayId>"). Default "gateway". */
  gatewayId?: string;
}

export interface DevPki {
  dir: string;
  paths: Record<DevPkiFile, string>;
  rootCa: CaMaterial;
  edgeCa: CaMaterial;
  server: { cert: string; key: string; chain: string };
  trustBundle: string;
  /** Which layers were created by this call (empty when everything was reused). */
  created: ("root" | "edgeCa" | "server")[];
}

/** Certificates closer to expiry than this are reissued rather than reused. */
const RENEW_BEFORE_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Creates, or reuses, a development PKI in `dir`: a root CA, the gateway's edge CA issued by the root, and a
 * server certificate for the given names issued by the edge CA. Idempotent: a layer is kept when it is
 * present, issued by the layer above, matches its key, is not about to expire and (for the server
 * certificate) covers the requested names; otherwise that layer and those below it are issued again.
 */
export async function ensureDevPki(dir: string, opts: DevPkiOptions = {}): Promise<DevPki> {
  const hostnames = [...(opts.hostnames ?? ["localhost"])];
  const ips = [...(opts.ips ?? ["127.0.0.1"])];
  const gatewayId = opts.gatewayId ?? "gateway";
  const paths = Object.fromEntries(
    Object.entries(DEV_PKI_FILES).map(([k, f]) => [k, join(dir, f)]),
  ) as Record<DevPkiFile, string>;

  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw unusable(dir, err);
  }
  const stored = await readAll(paths);
  const created: DevPki["created"] = [];

  let rootCa: CaMaterial;
  if (stored.rootCert && stored.rootKey && selfSignedOk(stored.rootCert, stored.rootKey)) {
    rootCa = { cert: stored.rootCert, key: stored.rootKey };
  } else {
    rootCa = await createRootCa({ commonName: "Strata development root CA", keyType: opts.keyType });
    created.push("root");
  }

  let edgeCa: CaMaterial;
  if (!created.length && stored.edgeCaCert && stored.edgeCaKey && issuedOk(stored.edgeCaCert, rootCa.cert, stored.edgeCaKey)) {
    edgeCa = { cert: stored.edgeCaCert, key: stored.edgeCaKey };
  } else {
    const issued = await issueCaCert(rootCa, { commonName: `Strata edge CA ${gatewayId}`, keyType: opts.keyType });
    edgeCa = { cert: issued.cert, key: issued.key };
    created.push("edgeCa");
  }

  let server: DevPki["server"];
  if (
    !created.length &&
    stored.serverCert &&
    stored.serverKey &&
    issuedOk(stored.serverCert, edgeCa.cert, stored.serverKey) &&
    covers(stored.serverCert, hostnames, ips)
  ) {
    server = { cert: stored.serverCert, key: stored.serverKey, chain: stored.serverCert + edgeCa.cert };
  } else {
    server = await issueServerCert(edgeCa, { hostnames, ips, keyType: opts.keyType });
    created.push("server");
  }

  // Write only what changed (plus derived files when missing), so reuse leaves the files untouched.
  const writes: [DevPkiFile, string, number][] = [];
  if (created.includes("root")) writes.push(["rootCert", rootCa.cert, 0o644], ["rootKey", rootCa.key, 0o600]);
  if (created.includes("edgeCa")) writes.push(["edgeCaCert", edgeCa.cert, 0o644], ["edgeCaKey", edgeCa.key, 0o600]);
  if (created.includes("server")) writes.push(["serverCert", server.cert, 0o644], ["serverKey", server.key, 0o600]);
  if (stored.serverChain !== server.chain) writes.push(["serverChain", server.chain, 0o644]);
  if (stored.trustBundle !== rootCa.cert) writes.push(["trustBundle", rootCa.cert, 0o644]);
  for (const [name, content, mode] of writes) await writeAtomic(paths[name], content, mode);
  // Keys already on disk get their mode enforced too: a copied directory must not leave them readable.
  if (!created.length) {
    for (const name of ["rootKey", "edgeCaKey", "serverKey"] as const) await chmod(paths[name], 0o600);
  }

  return { dir, paths, rootCa, edgeCa, server, trustBundle: rootCa.cert, created };
}

async function readAll(paths: Record<DevPkiFile, string>): Promise<Partial<Record<DevPkiFile, string>>> {
  const out: Partial<Record<DevPkiFile, string>> = {};
  for (const [name, path] of Object.entries(paths) as [DevPkiFile, string][]) {
    try {
      out[name] = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw unusable(path, err);
    }
  }
  return out;
}

function fresh(pem: string): boolean {
  return certFacts(pem).notAfter.getTime() - Date.now() > RENEW_BEFORE_MS;
}

function selfSignedOk(cert: string, key: string): boolean {
  return verifyIssued(cert, cert, key) && certFacts(cert).isCa && fresh(cert);
}

function issuedOk(cert: string, issuer: string, key: string): boolean {
  return verifyIssued(cert, issuer, key) && fresh(cert);
}

function covers(cert: string, hostnames: readonly string[], ips: readonly string[]): boolean {
  const facts = certFacts(cert);
  return hostnames.every((h) => facts.dnsNames.includes(h)) && ips.every((ip) => facts.ips.includes(ip));
}

async function writeAtomic(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, content, { mode });
    await chmod(tmp, mode); // the umask may have narrowed it; make it exact
    await rename(tmp, path);
  } catch (err) {
    throw unusable(path, err);
  }
}

function unusable(path: string, err: unknown): StrataError {
  return new StrataError(
    "STRATA_PKI_DIR_UNUSABLE",
    `cannot read or write the development PKI at ${path} (${(err as Error).message}); ` +
      `make the directory writable by the gateway's user or point data_dir elsewhere`,
    { cause: err },
  );
}
