import type { BoundListener } from "../listeners.js";
import type { HubStats } from "../hub/hub.js";
import type { Message } from "../message.js";
import type { DropCause, StoreStats } from "../store/types.js";
import type { UpstreamState, UpstreamStatus } from "../upstream/types.js";

/**
 * The reserved system route for gateway state as telemetry of a gateway's own identity, with this
 * application property: a hop that receives such a message takes it out of the telemetry path (it never
 * reaches `[routes]` or the root's sinks). States now travel to the parent's front out of the queue (a parent
 * at its quota holds its child's telemetry, and a state queued behind it would be stuck); a state that still
 * comes as telemetry is taken the same way.
 */
export const STATE_PROPERTY = "strata-kind";
export const STATE_KIND = "gateway-state";
export const STATE_CONTENT_TYPE = "application/vnd.strata.gateway-state+json";

/** Everything core knows about itself, read in one go (Metrics.core()). */
export interface CoreSnapshot {
  deviceId: string;
  isRoot: boolean;
  hub: HubStats;
  store: StoreStats;
  upstream?: UpstreamState;
  listeners: BoundListener[];
}

export type CheckVerdict = "ok" | "warn" | "fail";

/** This gateway's clock against its parent's, probed on the parent's HTTPS front: positive offset = this one runs ahead. */
export interface ClockReading {
  offsetMs: number;
  /** Round trip of the probe: the offset is known to ± half of it (± 500 ms more from an HTTP Date header). */
  rttMs: number;
  /** When it was measured (this gateway's clock). */
  at: number;
  /** "strata": the parent answered its clock in ms; "http-date": only its Date header (1 s resolution). */
  source: "strata" | "http-date";
}
export interface CheckResult {
  verdict: CheckVerdict;
  what: string;
  detail: string;
}

/**
 * The compact state (JSON) a gateway sends upward every `report_interval_secs`, its subtree's with it. Version 1.
 * A few hundred bytes plus the check lines; the root keeps the newest per gateway.
 */
export interface GatewayState {
  v: 1;
  device: string;
  /** ms since the epoch when it was built (the gateway's clock). */
  at: number;
  root: boolean;
  link?: { status: UpstreamStatus; since: number; reconnects: number; failedAttempts: number; lastError?: string };
  /** Identities connected here (directly or on behalf of children). */
  connected: number;
  /** `$upstream` (what still has to go up from here); at the root, `$upstream` and its sinks' queues. */
  upstream: { depth: number; oldestAgeMs: number };
  /** All queues together (C2D, module inputs, sinks at the root). */
  queued: { depth: number; oldestAgeMs: number };
  /** Messages acked per second since the previous report: the drain rate. */
  drainPerSec: number;
  dropped: Record<DropCause, number>;
  deadLettered: number;
  usedBytes: number;
  quotaBytes: number;
  /**
   * Trace watermarks: per origin gateway, the highest Strata sequence this hop has accepted from below
   * (`gw5:1234` was accepted here when `accepted.gw5 >= 1234`). Per-identity order makes it exact for one
   * device's messages and a good guide otherwise.
   */
  accepted: Record<string, number>;
  /** The newest `strata check` run on this gateway (ports as bound, not probed). */
  checks?: { at: number; lines: CheckResult[] };
  /** Its clock against its parent's, newest measurement (absent on the root, or before the first probe). */
  clock?: ClockReading;
}

export function isStateMessage(message: Pick<Message, "properties">): boolean {
  return message.properties[STATE_PROPERTY] === STATE_KIND;
}

/** Builds this gateway's state from a core snapshot; `previous` (last report) gives the drain rate. */
export function buildGatewayState(
  core: CoreSnapshot,
  extra: { accepted: Record<string, number>; checks?: GatewayState["checks"]; clock?: ClockReading; previous?: { at: number; acked: number }; now?: number },
): GatewayState {
  const now = extra.now ?? Date.now();
  const queues = Object.values(core.store.queues);
  // What still has to leave from here: `$upstream` on a child; at the root, its northbound sinks' queues too.
  const leaving = Object.entries(core.store.queues).filter(([name]) => name === "$upstream" || (core.isRoot && name.startsWith("sink:"))).map(([, q]) => q);
  const up = leaving.length === 0 ? undefined : { depth: leaving.reduce((n, q) => n + q.depth, 0), oldestAgeMs: leaving.reduce((m, q) => Math.max(m, q.oldestAgeMs), 0) };
  const prev = extra.previous;
  const seconds = prev ? (now - prev.at) / 1000 : 0;
  const link = core.upstream;
  return {
    v: 1,
    device: core.deviceId,
    at: now,
    root: core.isRoot,
    ...(link ? { link: { status: link.status, since: link.since, reconnects: link.reconnects, failedAttempts: link.failedAttempts, ...(link.lastError ? { lastError: link.lastError } : {}) } } : {}),
    connected: core.hub.connected,
    upstream: { depth: up?.depth ?? 0, oldestAgeMs: up?.oldestAgeMs ?? 0 },
    queued: { depth: queues.reduce((n, q) => n + q.depth, 0), oldestAgeMs: queues.reduce((m, q) => Math.max(m, q.oldestAgeMs), 0) },
    drainPerSec: prev && seconds > 0 ? Math.max(0, Math.round(((core.store.acked - prev.acked) / seconds) * 10) / 10) : 0,
    dropped: { ...core.store.dropped },
    deadLettered: core.store.deadLettered,
    usedBytes: core.store.usedBytes,
    quotaBytes: core.store.quotaBytes,
    accepted: { ...extra.accepted },
    ...(extra.checks ? { checks: extra.checks } : {}),
    ...(extra.clock ? { clock: extra.clock } : {}),
  };
}

/** Parses a state message body; undefined when it is not a version-1 state (logged and skipped by callers). */
export function parseGatewayState(body: Buffer): GatewayState | undefined {
  try {
    const value = JSON.parse(body.toString("utf8")) as Partial<GatewayState>;
    if (value.v !== 1 || typeof value.device !== "string" || typeof value.at !== "number") return undefined;
    return value as GatewayState;
  } catch {
    return undefined; // a malformed body is reported by the caller, which knows the sender
  }
}

/** `gw5:1234` → { origin: "gw5", seq: 1234 }. */
export function parseStrataId(id: string): { origin: string; seq: number } | undefined {
  const colon = id.lastIndexOf(":");
  if (colon <= 0) return undefined;
  const seq = Number(id.slice(colon + 1));
  return Number.isSafeInteger(seq) ? { origin: id.slice(0, colon), seq } : undefined;
}
