import { X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import https from "node:https";
import { createServer } from "node:net";
import { isIP } from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import type { StrataConfig } from "../config/schema.js";
import { readSecret } from "../config/secret.js";
import { resolveConfig, type ConfigFlags } from "./context.js";
import { provisionStatusLine } from "../provision/index.js";
import type { Output } from "./output.js";

export type Verdict = "ok" | "warn" | "fail";
export interface CheckLine {
  verdict: Verdict;
  what: string;
  detail: string;
}

const DAY = 24 * 60 * 60 * 1000;
/**
 * Certificates (server, edge CA, trusted roots) closer to expiry than this are a warning: six weeks leave time
 * to renew or roll a root over (docs/pki.md). The gateway renews its server certificate itself at 2/3 of its
 * lifetime when it holds its edge CA, so a warning here means renewal is not happening.
 */
export const EXPIRY_WARN_DAYS = 42;
/** SAS tokens tolerate 5 minutes of skew; warn well before that. */
const CLOCK_WARN_MS = 60_000;
const CLOCK_FAIL_MS = 300_000;

/** `strata check`: one line per check, ok/warn/fail with the fix; exit 1 when anything failed. */
export async function checkCommand(flags: ConfigFlags, out: Output): Promise<number> {
  let config: StrataConfig;
  try {
    config = (await resolveConfig(flags, { prepareEmbedded: false })).config;
  } catch (err) {
    out.info(format({ verdict: "fail", what: "config", detail: (err as Error).message }));
    return 1;
  }
  const lines = await runChecks(config);
  for (const l of lines) out.info(format(l));
  return lines.some((l) => l.verdict === "fail") ? 1 : 0;
}

function format(l: CheckLine): string {
  return `${l.verdict.padEnd(4)}  ${l.what.padEnd(12)} ${l.detail}`;
}

export async function runChecks(config: StrataConfig): Promise<CheckLine[]> {
  const lines: CheckLine[] = [{ verdict: "ok", what: "config", detail: `valid (${config.parent ? `child of ${config.parent.hostname}` : "root"}, device ${config.device_id})` }];
  lines.push(...checkCertificates(config));
  lines.push(...(await checkPorts(config)));
  lines.push(checkStore(config));
  if (config.identity) lines.push(checkSecret(config.identity.key_file, "identity.key_file"));
  if (config.service) lines.push(checkSecret(config.service.owner_key_file, "service.owner_key_file"));
  lines.push(...(await checkParent(config)));
  lines.push(provisionStatusLine(join(config.data_dir, "provision.json")));
  return lines;
}

function checkSecret(path: string, key: string): CheckLine {
  try {
    readSecret(path, key);
    return { verdict: "ok", what: "secret", detail: `${key} readable, mode 0600` };
  } catch (err) {
    return { verdict: "fail", what: "secret", detail: (err as Error).message };
  }
}

function checkCertificates(config: StrataConfig): CheckLine[] {
  const lines: CheckLine[] = [];
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(config.tls.cert_file));
  } catch (err) {
    return [{ verdict: "fail", what: "certificate", detail: `tls.cert_file ${config.tls.cert_file}: ${(err as Error).message}; point it at a PEM certificate` }];
  }
  lines.push(checkSecret(config.tls.key_file, "tls.key_file"));
  lines.push(expiryLine("certificate", "server certificate", cert, "issue a new server certificate (strata pki issue-server)"));
  if (config.tls.edge_ca_cert_file) {
    try {
      lines.push(expiryLine("certificate", "edge CA", new X509Certificate(readFileSync(config.tls.edge_ca_cert_file)), "issue this gateway a new edge CA (docs/pki.md)"));
    } catch (err) {
      lines.push({ verdict: "fail", what: "certificate", detail: `tls.edge_ca_cert_file ${config.tls.edge_ca_cert_file}: ${(err as Error).message}` });
    }
  }
  const host = config.hostname;
  const covers = isIP(host) ? cert.checkIP(host) : cert.checkHost(host);
  lines.push(covers
    ? { verdict: "ok", what: "certificate", detail: `covers hostname ${host}` }
    : { verdict: "fail", what: "certificate", detail: `does not cover hostname ${host} (SAN: ${cert.subjectAltName ?? "none"}); issue one for ${host}` });
  try {
    const bundle = readFileSync(config.tls.ca_file, "utf8");
    const count = (bundle.match(/BEGIN CERTIFICATE/g) ?? []).length;
    lines.push(count > 0
      ? { verdict: "ok", what: "trust", detail: `trust bundle holds ${count} certificate(s)` }
      : { verdict: "fail", what: "trust", detail: `tls.ca_file ${config.tls.ca_file} holds no PEM certificate` });
    for (const pem of bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
      const root = new X509Certificate(pem);
      const line = expiryLine("trust", `trusted root ${root.subject.replace(/\n/g, ", ")}`, root, "roll the root over (docs/pki.md)");
      if (line.verdict !== "ok") lines.push(line);
    }
  } catch (err) {
    lines.push({ verdict: "fail", what: "trust", detail: `tls.ca_file: ${(err as Error).message}` });
  }
  return lines;
}

/** ok, warn (within EXPIRY_WARN_DAYS) or fail (expired) for one certificate. */
function expiryLine(what: string, label: string, cert: X509Certificate, fix: string): CheckLine {
  const left = Date.parse(cert.validTo) - Date.now();
  const days = Math.floor(left / DAY);
  if (left <= 0) return { verdict: "fail", what, detail: `${label} expired on ${cert.validTo}; ${fix}` };
  if (left < EXPIRY_WARN_DAYS * DAY) return { verdict: "warn", what, detail: `${label} expires in ${days} days (${cert.validTo}); ${fix} before then` };
  return { verdict: "ok", what, detail: `${label} valid for ${days} more days` };
}

async function checkPorts(config: StrataConfig): Promise<CheckLine[]> {
  const { address } = config.listen;
  const ports: [string, number][] = [["mqtt", config.listen.mqtt], ["amqp", config.listen.amqp], ["https", config.listen.https]];
  return Promise.all(ports.map(async ([name, port]): Promise<CheckLine> => {
    if (port === 0) return { verdict: "ok", what: "port", detail: `${name}: any free port (listen.${name} = 0)` };
    const err = await tryBind(address, port);
    if (!err) return { verdict: "ok", what: "port", detail: `${name} ${address}:${port} is free` };
    if (err.code === "EADDRINUSE") return { verdict: "warn", what: "port", detail: `${name} ${address}:${port} is in use (is the gateway already running?); otherwise set listen.${name} or use --address 127.0.0.N` };
    if (err.code === "EACCES") return { verdict: "fail", what: "port", detail: `${name} ${address}:${port} needs privilege (below 1024): run as root, grant CAP_NET_BIND_SERVICE, or set listen.${name}` };
    return { verdict: "fail", what: "port", detail: `${name} ${address}:${port}: ${err.message}; check listen.address` };
  }));
}

function tryBind(address: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", (e: NodeJS.ErrnoException) => resolve(e));
    s.listen(port, address, () => s.close(() => resolve(undefined)));
  });
}

function checkStore(config: StrataConfig): CheckLine {
  try {
    mkdirSync(config.data_dir, { recursive: true });
    const probe = join(config.data_dir, `.check-${process.pid}`);
    writeFileSync(probe, "x");
    rmSync(probe);
    const fs = statfsSync(config.data_dir);
    const free = fs.bavail * fs.bsize;
    const quota = config.store.quota_bytes;
    const gib = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`;
    if (free < quota) return { verdict: "warn", what: "store", detail: `${config.data_dir}: ${gib(free)} free, less than store.quota_bytes (${gib(quota)}); lower the quota or free disk` };
    return { verdict: "ok", what: "store", detail: `${config.data_dir} writable, ${gib(free)} free, quota ${gib(quota)}` };
  } catch (err) {
    return { verdict: "fail", what: "store", detail: `data_dir ${config.data_dir}: ${(err as Error).message}; make it writable by the gateway's user` };
  }
}

async function checkParent(config: StrataConfig): Promise<CheckLine[]> {
  const parent = config.parent;
  if (!parent) return [{ verdict: "ok", what: "parent", detail: "none: this gateway is the root" }];
  const host = parent.address ?? parent.hostname;
  let ca: string;
  try {
    ca = readFileSync(config.tls.ca_file, "utf8");
  } catch {
    return [{ verdict: "fail", what: "parent", detail: "cannot read tls.ca_file to verify the parent" }];
  }
  const lines: CheckLine[] = [];
  const amqp = await tlsProbe(host, parent.amqp_port, parent.hostname, ca);
  lines.push(amqp
    ? { verdict: parent.transport === "amqps" ? "fail" : "warn", what: "parent", detail: `amqps ${host}:${parent.amqp_port}: ${amqp}` }
    : { verdict: "ok", what: "parent", detail: `amqps ${host}:${parent.amqp_port} reachable, certificate verified` });
  const date = await httpsDate(host, parent.https_port, parent.hostname, ca);
  if (typeof date === "string") {
    lines.push({ verdict: parent.transport === "wss" ? "fail" : "warn", what: "parent", detail: `https ${host}:${parent.https_port}: ${date}` });
  } else {
    lines.push({ verdict: "ok", what: "parent", detail: `https ${host}:${parent.https_port} reachable, certificate verified` });
    const offset = Date.now() - date;
    const s = Math.round(offset / 1000);
    const v: Verdict = Math.abs(offset) > CLOCK_FAIL_MS ? "fail" : Math.abs(offset) > CLOCK_WARN_MS ? "warn" : "ok";
    lines.push({ verdict: v, what: "clock", detail: `${s >= 0 ? "+" : ""}${s} s from the parent${v === "ok" ? "" : "; SAS tokens allow 300 s: synchronise the clock (NTP)"}` });
  }
  if (amqp && typeof date === "string") lines.push({ verdict: "fail", what: "parent", detail: `no way to reach ${parent.hostname}; check the network, [parent] address and ports` });
  return lines;
}

function tlsProbe(host: string, port: number, servername: string, ca: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, servername: isIP(servername) ? undefined : servername, ca, timeout: 3000 }, () => {
      socket.end();
      resolve(undefined);
    });
    socket.once("timeout", () => { socket.destroy(); resolve("timed out after 3 s"); });
    socket.once("error", (e) => resolve(e.message));
  });
}

function httpsDate(host: string, port: number, servername: string, ca: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = https.get({ host, port, path: "/", ca, servername: isIP(servername) ? undefined : servername, timeout: 3000 }, (res) => {
      res.resume();
      const d = Date.parse(res.headers.date ?? "");
      resolve(Number.isFinite(d) ? d : "no Date header in the answer");
    });
    req.once("timeout", () => { req.destroy(); resolve("timed out after 3 s"); });
    req.once("error", (e) => resolve(e.message));
  });
}
