import type { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { CoreSnapshot } from "./state.js";

/** Label values of one sample: `{ endpoint: "$upstream" }`. */
export type Labels = Record<string, string | number>;

/** What a collect-on-scrape reader returns: one number (no labels), or one value per label set. */
export type Reading = number | Iterable<readonly [Labels, number]>;

/**
 * The per-head instruments every protocol head (mqtt, amqp, https-device, translation plugins) updates, so
 * that `/metrics` shows every head the same way (`head` label = the head's name). Connections per head are
 * read from the hub at scrape time (`strata_head_connections`); meterHead (head-meter.ts) updates the rest.
 */
export interface HeadMetrics {
  /** Messages accepted from devices (telemetry acknowledged after the durable write). */
  messagesIn: Counter<"head">;
  /** Messages delivered to devices (C2D, module inputs, desired patches, method calls). */
  messagesOut: Counter<"head">;
  bytesIn: Counter<"head">;
  bytesOut: Counter<"head">;
  /** Refused connections or tokens; `reason` is a short constant ("bad-signature", "expired", …). */
  authFailures: Counter<"head" | "reason">;
}

/**
 * The Metrics service behind TOKENS.Metrics: one prom-client Registry per gateway (never the global one, so
 * that several gateways in one process stay apart) with helpers that enforce Strata's naming. Names must
 * start with `strata_` (except the process and Node.js defaults) and say their unit (`_seconds`, `_bytes`,
 * `_total` for counters).
 */
export interface Metrics {
  readonly registry: Registry;
  counter<L extends string = never>(name: string, help: string, labelNames?: readonly L[]): Counter<L>;
  gauge<L extends string = never>(name: string, help: string, labelNames?: readonly L[]): Gauge<L>;
  histogram<L extends string = never>(name: string, help: string, labelNames?: readonly L[], buckets?: readonly number[]): Histogram<L>;
  /** A gauge read from a stats object at scrape time (queue depths, link state): no bookkeeping between scrapes. */
  gaugeFn(name: string, help: string, labelNames: readonly string[], read: () => Reading): void;
  /** A counter read at scrape time from a monotonic stats field (hub.stats().ingested, …). */
  counterFn(name: string, help: string, labelNames: readonly string[], read: () => Reading): void;
  /** The shared per-head instruments (created once per registry; heads label them with their name). */
  heads(): HeadMetrics;
  /** Core's own stats in one read (hub, store, upstream link, listeners); undefined until the gateway attached them. */
  core(): CoreSnapshot | undefined;
  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string>;
  readonly contentType: string;
}
