import { gzipSync } from "node:zlib";
import type { LogRing } from "./log-ring.js";

/** A module's captured output, as the agent's `GetModuleLogs` returns it (oldest first). */
export interface ModuleLogSource {
  id: string;
  lines: string[];
}

/** One `items[]` entry of IoT Edge's UploadModuleLogs payload, validated. */
export interface LogItem {
  id: RegExp;
  since?: number;
  until?: number;
  /** Syslog severity: lines at this severity or more severe (a lower number) pass. */
  loglevel?: number;
  regex?: RegExp;
  tail?: number;
}

export interface LogsRequest {
  items: LogItem[];
  encoding: "none" | "gzip";
  contentType: "text" | "json";
}

/** A payload field IoT Edge's schema does not allow; `field` is its path, e.g. `items[0].filter.tail`. */
export class PayloadError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

/** One log line with what the filters look at. */
interface Entry {
  id: string;
  time?: number;
  /** Syslog severity 0-7. */
  severity: number;
  line: string;
}

/** IoT Edge's default for a line that states no level: Informational. */
const DEFAULT_SEVERITY = 6;

/**
 * Validates UploadModuleLogs' `{ schemaVersion, items: [{ id, filter: { since, until, loglevel, regex, tail } }],
 * encoding, contentType, sasUrl }`. No items means every source, unfiltered. `sasUrl` is accepted and not used:
 * results go to the support container (and from there to cloud storage).
 */
export function parseLogsRequest(payload: Record<string, unknown>, now = Date.now()): LogsRequest {
  const rawItems = payload["items"] ?? [{ id: ".*" }];
  if (!Array.isArray(rawItems)) throw new PayloadError("items", "must be an array of { id, filter }");
  const items = rawItems.map((raw: unknown, i): LogItem => {
    if (!raw || typeof raw !== "object") throw new PayloadError(`items[${i}]`, "must be an object { id, filter }");
    const item = raw as Record<string, unknown>;
    const filter = (item["filter"] ?? {}) as Record<string, unknown>;
    if (typeof filter !== "object") throw new PayloadError(`items[${i}].filter`, "must be an object");
    const at = `items[${i}].filter`;
    const out: LogItem = { id: regexOf(item["id"] ?? ".*", `items[${i}].id`) };
    const since = timeOf(filter["since"], `${at}.since`, now);
    const until = timeOf(filter["until"], `${at}.until`, now);
    if (since !== undefined) out.since = since;
    if (until !== undefined) out.until = until;
    if (filter["loglevel"] !== undefined) out.loglevel = intOf(filter["loglevel"], `${at}.loglevel`, 0, 7);
    if (filter["tail"] !== undefined) out.tail = intOf(filter["tail"], `${at}.tail`, 0, 1_000_000);
    if (filter["regex"] !== undefined) out.regex = regexOf(filter["regex"], `${at}.regex`);
    return out;
  });
  const encoding = payload["encoding"] ?? "none";
  if (encoding !== "none" && encoding !== "gzip") throw new PayloadError("encoding", `must be "none" or "gzip", not ${JSON.stringify(encoding)}`);
  const contentType = payload["contentType"] ?? "text";
  if (contentType !== "text" && contentType !== "json") throw new PayloadError("contentType", `must be "text" or "json", not ${JSON.stringify(contentType)}`);
  return { items, encoding, contentType };
}

/**
 * The lines the request selects: each item picks the sources whose id its `id` regex matches (the gateway's own
 * lines by plugin or area, the agent's modules by name), filters them by time, level and regex, then keeps the
 * last `tail` of each source (IoT Edge applies since/until first, then tail, per module). Sources in id order.
 */
export function selectLogs(req: LogsRequest, ring: LogRing, modules: readonly ModuleLogSource[]): Map<string, Entry[]> {
  const bySource = new Map<string, Entry[]>();
  const add = (e: Entry): void => {
    const list = bySource.get(e.id);
    if (list) list.push(e);
    else bySource.set(e.id, [e]);
  };
  for (const l of ring.select({})) add({ id: sourceOf(l.line), time: l.time, severity: pinoToSyslog(l.level), line: l.line });
  for (const m of modules) for (const line of m.lines) add(parseModuleLine(m.id, line));

  const picked = new Map<string, Set<Entry>>();
  for (const item of req.items) {
    for (const [id, entries] of bySource) {
      if (!item.id.test(id)) continue;
      let kept = entries.filter((e) => (item.since === undefined || e.time === undefined || e.time >= item.since)
        && (item.until === undefined || e.time === undefined || e.time <= item.until)
        && (item.loglevel === undefined || e.severity <= item.loglevel)
        && (!item.regex || item.regex.test(e.line)));
      if (item.tail !== undefined) kept = item.tail === 0 ? [] : kept.slice(-item.tail);
      const set = picked.get(id) ?? new Set<Entry>();
      for (const e of kept) set.add(e);
      picked.set(id, set);
    }
  }
  const out = new Map<string, Entry[]>();
  for (const id of [...picked.keys()].sort()) {
    // Two items may pick overlapping lines: each line once, in its source's order.
    const set = picked.get(id)!;
    out.set(id, bySource.get(id)!.filter((e) => set.has(e)));
  }
  return out;
}

/** The blob body: `text` is each source's lines under a `==> id <==` header; `json` is IoT Edge's log records. */
export function renderLogs(selected: Map<string, Entry[]>, contentType: "text" | "json"): string {
  if (contentType === "json") {
    const records = [...selected].flatMap(([id, entries]) => entries.map((e) => ({
      id, timeStamp: e.time === undefined ? null : new Date(e.time).toISOString(), logLevel: e.severity, log: e.line,
    })));
    return JSON.stringify(records);
  }
  return [...selected].map(([id, entries]) => [`==> ${id} <==`, ...entries.map((e) => e.line)].join("\n")).join("\n\n") + "\n";
}

/** Blob name suffix and content type for the request's format. */
export function logsFormat(req: LogsRequest): { suffix: string; contentType: string; encode: (b: Buffer) => Buffer } {
  const base = req.contentType === "json" ? { suffix: ".json", contentType: "application/json" } : { suffix: ".log", contentType: "text/plain" };
  if (req.encoding === "gzip") return { suffix: `${base.suffix}.gz`, contentType: "application/gzip", encode: (b) => gzipSync(b) };
  return { ...base, encode: (b) => b };
}

/** The plugin or area a pino line came from (what `items[].id` matches); core's other lines are `strata`. */
export function sourceOf(line: string): string {
  const m = /"plugin":"([^"]*)"/.exec(line) ?? /"area":"([^"]*)"/.exec(line);
  return m ? m[1]! : "strata";
}

/** pino levels (10 trace … 60 fatal) as syslog severities. */
function pinoToSyslog(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/** IoT Edge's recommended `<level> yyyy-MM-dd HH:mm:ss.fff zzz text`, a pino JSON line, or plain text. */
function parseModuleLine(id: string, line: string): Entry {
  const edge = /^<([0-7])>\s*(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?\s*(?:Z|[+-]\d{2}:?\d{2})?)?/.exec(line);
  if (edge) {
    const t = edge[2] ? Date.parse(edge[2].replace(" ", "T").replace(/\s+/g, "")) : NaN;
    return { id, severity: Number(edge[1]), line, ...(Number.isFinite(t) ? { time: t } : {}) };
  }
  if (line.startsWith("{")) {
    try {
      const o = JSON.parse(line) as { time?: unknown; level?: unknown };
      const time = typeof o.time === "number" ? o.time : undefined;
      const severity = typeof o.level === "number" ? pinoToSyslog(o.level) : DEFAULT_SEVERITY;
      return { id, severity, line, ...(time !== undefined ? { time } : {}) };
    } catch {
      // not JSON after all
    }
  }
  return { id, severity: DEFAULT_SEVERITY, line };
}

function regexOf(v: unknown, field: string): RegExp {
  if (typeof v !== "string") throw new PayloadError(field, "must be a regular expression string");
  try {
    return new RegExp(v);
  } catch (err) {
    throw new PayloadError(field, `is not a valid regular expression (${(err as Error).message})`);
  }
}

function intOf(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new PayloadError(field, `must be an integer from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return v;
}

function timeOf(v: unknown, field: string, now: number): number | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  const t = parseTime(v, now);
  if (t === undefined) throw new PayloadError(field, `must be Unix seconds, an RFC 3339 time or a duration (90m, 2h, 1d), not ${JSON.stringify(v)}`);
  return t;
}

/** Unix seconds, an ISO date, or a relative `15m` / `2h` / `1d` / `1 day` (IoT Edge's `since`/`until`), in ms. */
export function parseTime(v: unknown, now = Date.now()): number | undefined {
  if (typeof v === "number") return v * 1000;
  if (typeof v !== "string" || v === "") return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const duration = parseDuration(s);
  if (duration !== undefined) return now - duration;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : undefined;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90m`, `1d`, `2 days 3 hours 2 minutes` → ms. */
function parseDuration(s: string): number | undefined {
  const re = /(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?)\b/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * UNIT_MS[m[2]![0]!]!;
    end = re.lastIndex;
    while (s[end] === " ") end++;
    re.lastIndex = end;
  }
  return end > 0 && end === s.length ? total : undefined;
}
