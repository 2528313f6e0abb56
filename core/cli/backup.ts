// `strata backup <file>` (from the running gateway, consistent) and `strata restore <file>` (on a fresh data dir).
import { chmodSync, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { isIP } from "node:net";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { createReadStream } from "node:fs";
import { parseArgs } from "node:util";
import { ClassicLevel } from "classic-level";
import { stringify as toToml } from "smol-toml";
import { loadConfig } from "../config/load.js";
import type { StrataConfig } from "../config/schema.js";
import { readSecret } from "../config/secret.js";
import { StrataError } from "../errors.js";
import { BACKUP_FORMAT, BACKUP_PATH, type BackupLine } from "../pki/backup.js";
import { deviceTokenSigner, ownerTokenSigner } from "../scope/https-client.js";
import { resolveConfig } from "./context.js";
import type { Output } from "./output.js";

export const BACKUP_USAGE = `strata backup <file> [--config <file>] [--https-port <port>]
      a consistent backup of the running gateway (store records, config, TLS material and keys) to <file> (0600)
strata restore <file> [--dir <config dir>] [--data-dir <dir>]
      write the backup's config and files into --dir (default /etc/strata) and its records into a fresh data dir`;

/** Streams the running gateway's backup into `file` (through a temp file: a failed backup leaves nothing). */
export async function takeBackup(config: StrataConfig, file: string, o: { httpsPort?: number } = {}): Promise<{ records: number; files: number }> {
  const token = config.service
    ? ownerTokenSigner(config.hub, readSecret(config.service.owner_key_file, "service.owner_key_file"))
    : config.identity
      ? deviceTokenSigner(config.hub, config.device_id, readSecret(config.identity.key_file, "identity.key_file"))
      : undefined;
  if (!token) throw new StrataError("STRATA_CLI_NO_CREDENTIAL", "a backup needs [service] owner_key_file (root) or [identity] key_file; add one to the config");
  const address = config.listen.address === "0.0.0.0" || config.listen.address === "::" ? "127.0.0.1" : config.listen.address;
  const tmp = `${file}.${process.pid}.partial`;
  const outStream = createWriteStream(tmp, { mode: 0o600 });
  try {
    const res = await new Promise<import("node:http").IncomingMessage>((resolveRes, reject) => {
      const req = https.get({
        host: address, port: o.httpsPort ?? config.listen.https, path: BACKUP_PATH,
        ca: readFileSync(config.tls.ca_file, "utf8"),
        servername: isIP(config.hostname) ? undefined : config.hostname,
        headers: { authorization: token() },
      }, resolveRes);
      req.once("error", (err) => reject(new StrataError("STRATA_CLI_GATEWAY_UNREACHABLE", `the gateway's https front does not answer (${err.message}); a backup is taken from the running gateway: start it first`, { cause: err })));
    });
    if (res.statusCode !== 200) {
      let body = "";
      for await (const chunk of res) body += String(chunk);
      throw new StrataError("STRATA_BACKUP_REFUSED", `the gateway refused the backup (${res.statusCode}): ${body.slice(0, 300)}`);
    }
    let last = "";
    let pending = "";
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (!outStream.write(chunk)) await new Promise<void>((r) => outStream.once("drain", () => r()));
      pending += chunk.toString("utf8");
      const lines = pending.split("\n");
      pending = lines.pop()!;
      if (lines.length) last = lines[lines.length - 1]!;
    }
    await new Promise<void>((r, reject) => outStream.end((err?: Error | null) => (err ? reject(err) : r())));
    const end = parseLine(last, file) ;
    if (end.type !== "end") throw new StrataError("STRATA_BACKUP_TRUNCATED", `the backup stream ended early (no end line); take it again`);
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
    return { records: end.records, files: end.files };
  } catch (err) {
    outStream.destroy();
    rmSync(tmp, { force: true });
    throw err;
  }
}

function parseLine(text: string, file: string): BackupLine {
  try {
    return JSON.parse(text) as BackupLine;
  } catch (err) {
    throw new StrataError("STRATA_BACKUP_INVALID", `${file} is not a ${BACKUP_FORMAT} file (${(err as Error).message}); use a file strata backup wrote`, { cause: err });
  }
}

export interface RestoreOptions {
  /** Where the config and its files go. */
  dir: string;
  /** The restored gateway's data dir (default: the backup's). Must be empty or absent. */
  dataDir?: string;
}

/** Restores a backup: config + files into `dir`, records into a fresh store. Returns the config file's path. */
export async function restoreBackup(file: string, o: RestoreOptions): Promise<{ configFile: string; records: number; deviceId: string }> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let header: Extract<BackupLine, { type: "header" }> | undefined;
  let config: StrataConfig | undefined;
  const files: Extract<BackupLine, { type: "file" }>[] = [];
  let db: ClassicLevel<Buffer, Buffer> | undefined;
  let batch: { type: "put"; key: Buffer; value: Buffer }[] = [];
  let records = 0;
  let ended = false;
  let storeDir = "";
  try {
    for await (const text of lines) {
      if (!text) continue;
      const line = parseLine(text, file);
      if (!header) {
        if (line.type !== "header" || line.format !== BACKUP_FORMAT) throw new StrataError("STRATA_BACKUP_INVALID", `${file} is not a ${BACKUP_FORMAT} file; use a file strata backup wrote`);
        header = line;
        continue;
      }
      if (line.type === "config") config = structuredClone(line.json) as StrataConfig;
      else if (line.type === "file") files.push(line);
      else if (line.type === "record") {
        if (!db) {
          if (!config) throw new StrataError("STRATA_BACKUP_INVALID", `${file}: records before the config; use a file strata backup wrote`);
          storeDir = join(resolve(o.dataDir ?? config.data_dir), "store");
          if (existsSync(storeDir) && readdirSync(storeDir).length > 0) {
            throw new StrataError("STRATA_RESTORE_NOT_EMPTY", `${storeDir} already holds a store; restore into a fresh data dir (--data-dir) so nothing is overwritten`);
          }
          mkdirSync(storeDir, { recursive: true, mode: 0o700 });
          db = new ClassicLevel<Buffer, Buffer>(storeDir, { keyEncoding: "buffer", valueEncoding: "buffer" });
          await db.open();
        }
        batch.push({ type: "put", key: Buffer.from(line.k, "base64"), value: Buffer.from(line.v, "base64") });
        records++;
        if (batch.length >= 1000) { await db.batch(batch); batch = []; }
      } else if (line.type === "end") {
        if (line.records !== records) throw new StrataError("STRATA_BACKUP_TRUNCATED", `${file} announces ${line.records} records but holds ${records}; take the backup again`);
        ended = true;
      }
    }
    if (!ended || !header || !config) throw new StrataError("STRATA_BACKUP_TRUNCATED", `${file} has no end line: the backup is incomplete; take it again`);
    if (db && batch.length) await db.batch(batch, { sync: true });
  } catch (err) {
    await db?.close();
    if (storeDir && records > 0) rmSync(storeDir, { recursive: true, force: true });
    throw err;
  }
  await db?.close();

  // Files go next to the config, by their own names; the config points at them there.
  mkdirSync(o.dir, { recursive: true, mode: 0o755 });
  const set = (key: string, value: string) => {
    const [section, name] = key.split(".") as [string, string];
    const target = (config as unknown as Record<string, Record<string, unknown>>)[section];
    if (target) target[name] = value;
  };
  const used = new Set<string>();
  for (const f of files) {
    let name = f.name;
    if (used.has(name)) name = `${f.key.replace(/\./g, "-")}-${name}`;
    used.add(name);
    const path = join(o.dir, name);
    writeFileSync(path, f.content, { mode: f.mode });
    chmodSync(path, f.mode);
    set(f.key, path);
  }
  config.data_dir = resolve(o.dataDir ?? config.data_dir);
  const configFile = join(o.dir, "strata.toml");
  const plain = JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
  writeFileSync(configFile, `# restored by strata restore from ${file} (backup of ${header.deviceId}, ${header.createdAt})\n${toToml(plain)}\n`, { mode: 0o644 });
  loadConfig(configFile);
  return { configFile, records, deviceId: header.deviceId };
}

/** `strata backup|restore`; returns the exit code. */
export async function backupCommand(command: "backup" | "restore", args: readonly string[], out: Output): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args], allowPositionals: true,
    options: { config: { type: "string" }, "https-port": { type: "string" }, dir: { type: "string" }, "data-dir": { type: "string" } },
  });
  const file = positionals[0];
  if (!file) {
    out.error(BACKUP_USAGE);
    return 2;
  }
  if (command === "backup") {
    const { config } = await resolveConfig({ config: values.config }, { prepareEmbedded: false });
    const r = await takeBackup(config, resolve(file), values["https-port"] ? { httpsPort: Number(values["https-port"]) } : {});
    out.info(`backup of ${config.device_id} written to ${resolve(file)} (mode 0600: it holds every key): ${r.records} records, ${r.files} files`);
    return 0;
  }
  const r = await restoreBackup(resolve(file), { dir: resolve(values.dir ?? "/etc/strata"), ...(values["data-dir"] ? { dataDir: values["data-dir"] } : {}) });
  out.info(`restored ${r.deviceId}: ${r.records} records\ncheck it:  strata check --config ${r.configFile}\nstart it:  strata start --config ${r.configFile}`);
  return 0;
}
