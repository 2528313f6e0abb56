// `strata child add|install|list`: set up a child gateway from its parent, and see the children's link state.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { stringify as toToml } from "smol-toml";
import { loadConfig } from "../config/load.js";
import type { StrataConfig } from "../config/schema.js";
import { readSecret } from "../config/secret.js";
import { StrataError } from "../errors.js";
import type { IdentityRecord } from "../identity/types.js";
import { issueCaCert, issueServerCert, type CaMaterial } from "../pki/certs.js";
import { deviceTokenSigner, errorText, GatewayClient, GatewayUnreachable, ownerTokenSigner } from "../scope/https-client.js";
import { CHILDREN_PATH, IDENTITIES_PATH, type ChildState } from "../scope/types.js";
import { resolveConfig } from "./context.js";
import type { Output } from "./output.js";

export const CHILD_USAGE = `strata child add <childId> [--hostname <name>] [--address <ip>] [--out <file>] [--data-dir <dir>]
      register a child gateway (at the root, through this gateway) and write its bundle (default ./<childId>.bundle.json)
strata child install <bundle> [--dir /etc/strata]
      on the child: put its config, keys and certificates in place
strata child list
      this gateway's children with their link state
  (common: --config <file>)`;

export const BUNDLE_FORMAT = "strata-child-bundle/1";

/** Everything a child gateway needs, in one file (mode 0600: it holds keys). */
export interface ChildBundle {
  format: typeof BUNDLE_FORMAT;
  childId: string;
  /** The gateway that issued the bundle (the child's parent). */
  parent: string;
  createdAt: string;
  /** File name → content and mode; `strata.toml` is the config, the rest are referenced from it by relative path. */
  files: Record<string, { content: string; mode: number }>;
}

export interface ChildAddOptions {
  childId: string;
  /** The child's DNS name (its certificate's SAN and its `hostname`). */
  hostname?: string;
  /** The child's IP address (SAN and `[listen] address`). */
  address?: string;
  /** The child's data_dir. Default /var/lib/strata. */
  dataDir?: string;
  /** This gateway's HTTPS port when it differs from `[listen] https` (a test gateway on port 0). */
  httpsPort?: number;
  /** This gateway's AMQP port when it differs from `[listen] amqp`. */
  amqpPort?: number;
}

const FILES = {
  config: "strata.toml",
  identityKey: "identity.key",
  serverChain: "server.chain.pem",
  serverKey: "server.key.pem",
  edgeCaCert: "edge-ca.cert.pem",
  edgeCaKey: "edge-ca.key.pem",
  trustBundle: "trust-bundle.pem",
} as const;

/** A client of this gateway's own front, authenticated as this gateway (or, on a root without an identity, the owner). */
export function localGatewayClient(config: StrataConfig, port?: number): GatewayClient {
  const token = config.identity
    ? deviceTokenSigner(config.hub, config.device_id, readSecret(config.identity.key_file, "identity.key_file"))
    : config.service
      ? ownerTokenSigner(config.hub, readSecret(config.service.owner_key_file, "service.owner_key_file"))
      : undefined;
  if (!token) throw new StrataError("STRATA_CLI_NO_CREDENTIAL", "this gateway has neither [identity] key_file nor [service] owner_key_file; add [identity] key_file (its own key) to the config");
  const address = config.listen.address;
  return new GatewayClient({
    host: address === "0.0.0.0" || address === "::" ? "127.0.0.1" : address,
    port: port ?? config.listen.https,
    hostname: config.hostname,
    ca: readFileSync(config.tls.ca_file, "utf8"),
    token,
  });
}

async function call(client: GatewayClient, method: string, path: string, body?: unknown): Promise<unknown> {
  let res;
  try {
    res = await client.request(method, path, body, { timeoutMs: 20_000 });
  } catch (err) {
    const detail = err instanceof GatewayUnreachable ? err.message : String(err);
    throw new StrataError("STRATA_CLI_GATEWAY_UNREACHABLE", `this gateway's https front does not answer (${detail}); start it first (strata start), or check [listen] address and https`, { cause: err });
  }
  if (res.status !== 200) throw new StrataError("STRATA_CLI_CHILD_REFUSED", `${method} ${path} answered ${res.status}: ${errorText(res.body)}`);
  return res.body;
}

function edgeCaOf(config: StrataConfig): CaMaterial {
  const { edge_ca_cert_file: certFile, edge_ca_key_file: keyFile } = config.tls;
  if (!certFile || !keyFile) {
    throw new StrataError("STRATA_CLI_NO_EDGE_CA", "child add issues the child's certificates from this gateway's edge CA: set [tls] edge_ca_cert_file and edge_ca_key_file (the embedded default and installed bundles have them)");
  }
  return { cert: readFileSync(certFile, "utf8"), key: readSecret(keyFile, "tls.edge_ca_key_file") };
}

/**
 * Registers `childId` (parent = this gateway) through this running gateway — which forwards to the root — and
 * builds the child's bundle: config, identity key, server certificate (SAN = hostname and/or address) with
 * the chain up to the root, an edge CA of its own (so it can add children too) and the trust bundle.
 */
export async function childAdd(config: StrataConfig, o: ChildAddOptions): Promise<ChildBundle> {
  const { childId } = o;
  if (!o.hostname && !o.address) {
    throw new StrataError("STRATA_CLI_CHILD_NAME", `child add ${childId}: give --hostname <name> and/or --address <ip>: the child's certificate must name what its devices and children connect to`);
  }
  if (o.address && isIP(o.address) === 0) throw new StrataError("STRATA_CLI_CHILD_NAME", `--address ${o.address} is not an IP address; put names in --hostname`);
  const edgeCa = edgeCaOf(config); // before registering: fail early when there is nothing to issue with
  const client = localGatewayClient(config, o.httpsPort);
  let record: IdentityRecord;
  try {
    record = (await call(client, "POST", IDENTITIES_PATH, { deviceId: childId, edge: true, parent: config.device_id, status: "enabled" })) as IdentityRecord;
  } finally {
    client.close();
  }
  if (record.auth?.type !== "sas") throw new StrataError("STRATA_CLI_CHILD_REFUSED", `${childId} exists with ${record.auth?.type} authentication; a child gateway set up by child add uses SAS`);

  const hostname = o.hostname ?? o.address!;
  const ips = [...new Set([o.address, isIP(hostname) ? hostname : undefined].filter((x): x is string => !!x))];
  const server = await issueServerCert(edgeCa, { hostnames: isIP(hostname) ? [] : [hostname], ips });
  const childCa = await issueCaCert(edgeCa, { commonName: `Strata edge CA ${childId}` });

  const listen = config.listen.address;
  const httpsPort = o.httpsPort ?? config.listen.https;
  const amqpPort = o.amqpPort ?? config.listen.amqp;
  const toml = toToml({
    hub: config.hub,
    device_id: childId,
    hostname,
    data_dir: o.dataDir ?? "/var/lib/strata",
    identity: { key_file: FILES.identityKey },
    parent: {
      hostname: config.hostname,
      ...(listen !== "0.0.0.0" && listen !== "::" ? { address: listen } : {}),
      ...(httpsPort > 0 ? { https_port: httpsPort } : {}),
      ...(amqpPort > 0 ? { amqp_port: amqpPort } : {}),
    },
    tls: {
      cert_file: FILES.serverChain,
      key_file: FILES.serverKey,
      ca_file: FILES.trustBundle,
      edge_ca_cert_file: FILES.edgeCaCert,
      edge_ca_key_file: FILES.edgeCaKey,
    },
    ...(o.address ? { listen: { address: o.address } } : {}),
  });
  return {
    format: BUNDLE_FORMAT,
    childId,
    parent: config.device_id,
    createdAt: new Date().toISOString(),
    files: {
      [FILES.config]: { content: `# strata child ${childId}, set up by ${config.device_id} (strata child add)\n${toml}\n`, mode: 0o644 },
      [FILES.identityKey]: { content: `${record.auth.primaryKey}\n`, mode: 0o600 },
      [FILES.serverChain]: { content: server.chain, mode: 0o644 },
      [FILES.serverKey]: { content: server.key, mode: 0o600 },
      [FILES.edgeCaCert]: { content: childCa.chain, mode: 0o644 },
      [FILES.edgeCaKey]: { content: childCa.key, mode: 0o600 },
      [FILES.trustBundle]: { content: readFileSync(config.tls.ca_file, "utf8"), mode: 0o644 },
    },
  };
}

export function writeBundle(path: string, bundle: ChildBundle): void {
  writeFileSync(path, JSON.stringify(bundle, null, 2) + "\n", { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function readBundle(path: string): ChildBundle {
  let bundle: ChildBundle;
  try {
    bundle = JSON.parse(readFileSync(path, "utf8")) as ChildBundle;
  } catch (err) {
    throw new StrataError("STRATA_CLI_BUNDLE_INVALID", `${path} cannot be read as a child bundle (${(err as Error).message}); use the file strata child add wrote`, { cause: err });
  }
  if (bundle?.format !== BUNDLE_FORMAT || !bundle.files?.[FILES.config]) {
    throw new StrataError("STRATA_CLI_BUNDLE_INVALID", `${path} is not a ${BUNDLE_FORMAT} bundle; use the file strata child add wrote`);
  }
  for (const name of Object.keys(bundle.files)) {
    if (name.includes("/") || name.includes("\\") || name.startsWith(".")) throw new StrataError("STRATA_CLI_BUNDLE_INVALID", `${path}: file name "${name}" is not a plain name; refusing to write outside the target folder`);
  }
  return bundle;
}

/** Writes the bundle's files into `dir` (keys 0600), then loads the config to prove it is valid. Returns its path. */
export function childInstall(bundle: ChildBundle, dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const [name, f] of Object.entries(bundle.files)) {
    const path = join(dir, name);
    writeFileSync(path, f.content, { mode: f.mode });
    chmodSync(path, f.mode);
  }
  const configFile = join(dir, FILES.config);
  loadConfig(configFile);
  return configFile;
}

export async function listChildren(config: StrataConfig, httpsPort?: number): Promise<ChildState[]> {
  const client = localGatewayClient(config, httpsPort);
  try {
    return ((await call(client, "GET", CHILDREN_PATH)) as { children: ChildState[] }).children;
  } finally {
    client.close();
  }
}

function ago(ms: number | null): string {
  if (ms === null) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return `${s} s ago`;
}

/** `strata child …`; returns the exit code. */
export async function childCommand(args: readonly string[], out: Output): Promise<number> {
  const [verb, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: "string" }, hostname: { type: "string" }, address: { type: "string" }, out: { type: "string" },
      "data-dir": { type: "string" }, dir: { type: "string" }, "https-port": { type: "string" },
    },
  });
  const httpsPort = values["https-port"] ? Number(values["https-port"]) : undefined;
  switch (verb) {
    case "add": {
      const childId = positionals[0];
      if (!childId) break;
      const { config } = await resolveConfig({ config: values.config }, { prepareEmbedded: !values.config });
      const bundle = await childAdd(config, {
        childId,
        ...(values.hostname ? { hostname: values.hostname } : {}),
        ...(values.address ? { address: values.address } : {}),
        ...(values["data-dir"] ? { dataDir: values["data-dir"] } : {}),
        ...(httpsPort ? { httpsPort } : {}),
      });
      const file = resolve(values.out ?? `${childId}.bundle.json`);
      writeBundle(file, bundle);
      out.info(`registered child gateway ${childId} under ${config.device_id}\nbundle written to ${file} (mode 0600: it holds the child's keys)\ncopy it to the child and run: strata child install ${file.split("/").pop()} [--dir /etc/strata]`);
      return 0;
    }
    case "install": {
      const file = positionals[0];
      if (!file) break;
      const bundle = readBundle(file);
      const dir = resolve(values.dir ?? "/etc/strata");
      const configFile = childInstall(bundle, dir);
      out.info(`installed child gateway ${bundle.childId} (parent ${bundle.parent}) into ${dir}\ncheck it:  strata check --config ${configFile}\nstart it:  strata start --config ${configFile}`);
      return 0;
    }
    case "list": {
      const { config } = await resolveConfig({ config: values.config }, { prepareEmbedded: false });
      const children = await listChildren(config, httpsPort);
      if (children.length === 0) out.info(`no child gateways under ${config.device_id}`);
      for (const c of children) {
        out.info(`${c.id.padEnd(24)} ${c.status.padEnd(8)} link ${(c.connected ? "connected" : "offline").padEnd(9)}  scope sync ${c.syncing ? "polling" : `last ${ago(c.lastSeen)}`}  subtree ${c.subtree}`);
      }
      return 0;
    }
  }
  out.error(CHILD_USAGE);
  return 2;
}
