/**
 * Backup of a running gateway (the root is the registry of record): one consistent snapshot of the store's
 * records (identities, twins, enrollment groups, sessions, every `kv` namespace, the Strata id counter), the
 * config and every file it references (TLS material, CA keys, secrets), streamed as JSON lines from
 * `GET /$strata/backup` on the HTTPS front, and written back by `strata restore` on a fresh machine.
 *
 * Consistency: LevelDB iterators read from an implicit snapshot taken when they are created, so one iterator
 * over the records sees them as of one instant while the gateway keeps writing. Endpoint queues, dedup memory
 * and dead letters are not backed up: they are messages in flight, delivered (at least once) by the gateway
 * being backed up; a restored gateway starts with empty queues rather than replaying delivered ones.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { readFileSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { ClassicLevel } from "classic-level";
import type { StrataConfig } from "../config/schema.js";
import type { IdentityRegistry } from "../identity/registry.js";
import type { Logger } from "../log.js";
import { authenticate } from "../scope/auth.js";

export const BACKUP_PATH = "/$strata/backup";
export const BACKUP_FORMAT = "strata-backup/1";
/** Key prefixes of the store backed up: every kv namespace (`k\0…`) and the Strata id counter (`s\0ids`). */
export const BACKUP_KEY_RANGES: readonly { gte: string; lt: string }[] = [
  { gte: "k\u0000", lt: "k\u0001" },
  { gte: "s\u0000", lt: "s\u0001" },
];

/** Config keys that name files; their contents travel in the backup. */
export const BACKUP_FILE_KEYS = [
  "tls.cert_file",
  "tls.key_file",
  "tls.ca_file",
  "tls.edge_ca_cert_file",
  "tls.edge_ca_key_file",
  "identity.key_file",
  "service.owner_key_file",
] as const;

/** One line of a backup file. */
export type BackupLine =
  | { type: "header"; format: typeof BACKUP_FORMAT; createdAt: string; deviceId: string; hub: string; root: boolean; configSource?: string }
  | { type: "config"; toml?: string; json: unknown }
  | { type: "file"; key: (typeof BACKUP_FILE_KEYS)[number]; name: string; content: string; mode: number }
  | { type: "record"; k: string; v: string }
  | { type: "end"; records: number; files: number };

/** Reads a dotted config key (`tls.cert_file`). */
export function configValue(config: StrataConfig, key: string): string | undefined {
  let v: unknown = config;
  for (const part of key.split(".")) v = v && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined;
  return typeof v === "string" ? v : undefined;
}

/**
 * The store's LevelDB. The Store interface has no snapshot method yet (asked of core/store: `snapshot(ranges)`),
 * so this reaches the LevelStore's handle; an iterator on it is the consistent snapshot.
 */
function levelOf(store: unknown): ClassicLevel<string, Buffer> {
  const db = (store as { db?: ClassicLevel<string, Buffer> }).db;
  if (!db || typeof db.iterator !== "function") throw new Error("the store does not expose its LevelDB; backup needs core/store's LevelStore");
  return db;
}

/** The store's records in the backed-up ranges, from one snapshot, as base64 key/value pairs. */
export async function* snapshotRecords(store: unknown): AsyncGenerator<{ k: string; v: string }> {
  const db = levelOf(store);
  // One iterator per range would be one snapshot per range; a single iterator over k..s covers both ranges
  // in one snapshot, and the keys between them (q…) are skipped.
  const iterator = db.iterator<Buffer, Buffer>({ gte: Buffer.from("k\u0000"), lt: Buffer.from("s\u0001"), keyEncoding: "buffer", valueEncoding: "buffer" });
  try {
    for await (const [k, v] of iterator) {
      const key = k.toString("utf8");
      if (!BACKUP_KEY_RANGES.some((r) => key >= r.gte && key < r.lt)) continue;
      yield { k: k.toString("base64"), v: v.toString("base64") };
    }
  } finally {
    await iterator.close();
  }
}

export interface BackupRouteOptions {
  config: StrataConfig;
  /** The config file, when the gateway runs from one (backed up as written, comments included). */
  configFile?: string;
  store: unknown;
  identities: IdentityRegistry;
  logger: Logger;
}

/** Writes a whole backup as JSON lines to `out` (the response). */
export async function writeBackup(o: BackupRouteOptions, write: (line: string) => Promise<void>): Promise<{ records: number; files: number }> {
  const { config } = o;
  const emit = (line: BackupLine) => write(JSON.stringify(line) + "\n");
  await emit({ type: "header", format: BACKUP_FORMAT, createdAt: new Date().toISOString(), deviceId: config.device_id, hub: config.hub, root: config.parent === undefined, ...(o.configFile ? { configSource: o.configFile } : {}) });
  let toml: string | undefined;
  if (o.configFile) toml = readFileSync(o.configFile, "utf8");
  await emit({ type: "config", ...(toml !== undefined ? { toml } : {}), json: config });
  let files = 0;
  for (const key of BACKUP_FILE_KEYS) {
    const path = configValue(config, key);
    if (!path) continue;
    const abs = isAbsolute(path) ? path : resolve(path);
    const content = readFileSync(abs, "utf8");
    await emit({ type: "file", key, name: abs.split("/").pop()!, content, mode: statSync(abs).mode & 0o777 });
    files++;
  }
  let records = 0;
  for await (const r of snapshotRecords(o.store)) {
    await emit({ type: "record", ...r });
    records++;
  }
  await emit({ type: "end", records, files });
  return { records, files };
}

/** Mounts `GET /$strata/backup` (the owner, or this gateway's own identity: its CLI). Returns the unmount. */
export function mountBackupRoute(front: { mountRaw(prefix: string, h: (req: IncomingMessage, res: ServerResponse) => unknown): () => void }, o: BackupRouteOptions & { selfKey?: string }): () => void {
  return front.mountRaw(BACKUP_PATH, (req, res) => {
    void serve(req, res, o);
  });
}

async function serve(req: IncomingMessage, res: ServerResponse, o: BackupRouteOptions & { selfKey?: string }): Promise<void> {
  const refuse = (status: number, message: string) => {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ Message: message, ErrorCode: status === 401 ? "IotHubUnauthorizedAccess" : "Forbidden" }));
  };
  if (req.method !== "GET") return refuse(405, "use GET /$strata/backup");
  const outcome = authenticate(req.headers.authorization, {
    identities: o.identities,
    hubName: o.config.hub,
    hostnames: [...new Set([o.config.hostname, o.config.listen.address])],
    ...(o.selfKey !== undefined ? { selfKey: o.selfKey } : {}),
    isRoot: o.config.parent === undefined,
  });
  if (!outcome.ok) return refuse(outcome.status, outcome.message);
  if (outcome.requester.kind === "child") return refuse(403, "a backup holds every key of this gateway: only the owner (iothubowner) or this gateway's own identity may take one");
  res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
  const write = (line: string) => new Promise<void>((resolveWrite, reject) => {
    if (res.destroyed) return reject(new Error("client went away"));
    if (res.write(line)) return resolveWrite();
    const onClose = () => reject(new Error("client went away"));
    res.once("close", onClose);
    res.once("drain", () => { res.off("close", onClose); resolveWrite(); });
  });
  try {
    const { records, files } = await writeBackup(o, write);
    res.end();
    o.logger.info({ requester: outcome.requester.id, records, files }, "backup streamed");
  } catch (err) {
    o.logger.error({ err }, "backup failed");
    // The stream has no "end" line: restore refuses a truncated backup.
    res.destroy(err as Error);
  }
}
