import type { BoundListener, HandshakeStats } from "../listeners.js";
import type { HubStats } from "../hub/hub.js";
import type { StoreStats } from "../store/types.js";
import type { UpstreamState, UpstreamStatus } from "../upstream/types.js";
import type { Metrics } from "./types.js";

/** What the core collectors read at scrape time; each is a cheap stats call already kept by its area. */
export interface CoreMetricSources {
  deviceId: string;
  isRoot: boolean;
  /** connectedIds/linkOf (optional) give connections per head: each link names the head that holds it. */
  hub: { stats(): HubStats; connectedIds?(): string[]; linkOf?(id: string): { head: string } | undefined };
  store: { stats(): StoreStats };
  upstream?: { state(): UpstreamState };
  listeners: { all(): BoundListener[]; handshakes?: { stats(): HandshakeStats } };
}

const STATUSES: readonly UpstreamStatus[] = ["connecting", "connected", "offline", "stopped"];

/**
 * The gateway's own collect-on-scrape metrics: hub counters, store and per-endpoint queues, drops by cause,
 * dead letters, the upstream link, listeners. Registered once by the composition root (core/gateway.ts).
 */
export function registerCoreMetrics(metrics: Metrics, src: CoreMetricSources): void {
  metrics.gaugeFn("strata_gateway_info", "This gateway: its device id and whether it is the root (always 1)", ["device_id", "root"],
    () => [[{ device_id: src.deviceId, root: String(src.isRoot) }, 1]]);
  metrics.gaugeFn("strata_listener_info", "Bound listeners (always 1)", ["name", "address", "port"],
    () => src.listeners.all().map((l) => [{ name: l.name, address: l.address, port: l.port }, 1] as const));
  const handshakes = src.listeners.handshakes;
  if (handshakes) {
    metrics.gaugeFn("strata_tls_handshakes_in_progress", "TLS handshakes running now, every TLS listener together (at most listen.max_tls_handshakes)", [], () => handshakes.stats().inProgress);
    metrics.gaugeFn("strata_tls_handshakes_waiting", "TLS connections waiting for a handshake slot now", [], () => handshakes.stats().waiting);
    metrics.counterFn("strata_tls_handshakes_deferred_total", "TLS connections that had to wait for a handshake slot (listen.max_tls_handshakes reached)", [], () => handshakes.stats().deferred);
    metrics.counterFn("strata_tls_handshakes_dropped_total", "TLS connections dropped by the handshake cap, by cause (wait: no slot in time; slow: handshake took too long)", ["cause"],
      () => { const s = handshakes.stats(); return [[{ cause: "wait" }, s.waitTimeouts], [{ cause: "slow" }, s.handshakeTimeouts]]; });
  }

  const hub = () => src.hub.stats();
  metrics.counterFn("strata_hub_messages_total", "Messages the hub took, by how: ingested (from a device here), forwarded (from a child), duplicate, unrouted",
    ["kind"], () => { const s = hub(); return [[{ kind: "ingested" }, s.ingested], [{ kind: "forwarded" }, s.forwarded], [{ kind: "duplicate" }, s.duplicates], [{ kind: "unrouted" }, s.unrouted]]; });
  metrics.gaugeFn("strata_hub_connected_identities", "Identities connected to this gateway (directly or on behalf of a child)", [], () => hub().connected);
  metrics.gaugeFn("strata_head_connections", "Identities connected here, by the head that holds the link (mqtt, amqp, a translation or system plugin)", ["head"], () => {
    const perHead = new Map<string, number>();
    for (const id of src.hub.connectedIds?.() ?? []) {
      const head = src.hub.linkOf?.(id)?.head;
      if (head) perHead.set(head, (perHead.get(head) ?? 0) + 1);
    }
    return [...perHead].map(([head, n]) => [{ head }, n] as const);
  });
  metrics.counterFn("strata_hub_method_calls_total", "Direct method calls, by outcome (timeouts included in all)", ["outcome"],
    () => { const s = hub(); return [[{ outcome: "all" }, s.methodCalls], [{ outcome: "timeout" }, s.methodTimeouts]]; });

  const store = () => src.store.stats();
  metrics.counterFn("strata_store_appended_total", "Messages written to endpoint queues (one per queue)", [], () => store().appended);
  metrics.counterFn("strata_store_acked_total", "Messages removed from queues after delivery; rate() of it is the drain rate", [], () => store().acked);
  metrics.counterFn("strata_store_duplicates_total", "Enqueues skipped because the Strata id was seen before at this hop", [], () => store().duplicates);
  metrics.counterFn("strata_store_dropped_total", "Messages dropped or refused, by cause (ttl: expired; quota: refused at the disk quota; dead-letter)", ["cause"],
    () => Object.entries(store().dropped).map(([cause, n]) => [{ cause }, n] as const));
  metrics.counterFn("strata_store_dead_letters_total", "Messages moved to the dead-letter area", [], () => store().deadLettered);
  metrics.gaugeFn("strata_store_used_bytes", "Bytes the store uses against its quota", [], () => store().usedBytes);
  metrics.gaugeFn("strata_store_quota_bytes", "store.quota_bytes", [], () => store().quotaBytes);
  metrics.gaugeFn("strata_queue_depth", "Messages queued per endpoint (leased ones included)", ["endpoint"],
    () => Object.entries(store().queues).map(([endpoint, q]) => [{ endpoint }, q.depth] as const));
  metrics.gaugeFn("strata_queue_oldest_age_seconds", "Age of the oldest queued message per endpoint (0 when empty)", ["endpoint"],
    () => Object.entries(store().queues).map(([endpoint, q]) => [{ endpoint }, q.oldestAgeMs / 1000] as const));

  const up = src.upstream;
  if (!up) return;
  metrics.gaugeFn("strata_upstream_status", "The link to the parent: 1 for its current status, 0 for the others", ["status"],
    () => { const s = up.state().status; return STATUSES.map((st) => [{ status: st }, st === s ? 1 : 0] as const); });
  metrics.gaugeFn("strata_upstream_connected", "1 when the link to the parent is up", [], () => (up.state().status === "connected" ? 1 : 0));
  metrics.counterFn("strata_upstream_reconnects_total", "Connections to the parent lost after they were up", [], () => up.state().reconnects);
  metrics.gaugeFn("strata_upstream_failed_attempts", "Failed connection attempts since the last success", [], () => up.state().failedAttempts);
  metrics.counterFn("strata_upstream_messages_total", "Messages handed to the parent, by outcome (sent: durable there; retried; refused)", ["outcome"],
    () => { const s = up.state(); return [[{ outcome: "sent" }, s.sent], [{ outcome: "retried" }, s.retried], [{ outcome: "refused" }, s.refused]]; });
  metrics.gaugeFn("strata_upstream_open_links", "Per-identity sender links open to the parent", [], () => up.state().openLinks);
  metrics.gaugeFn("strata_upstream_batch_version", "Batched-transfer version the parent takes (0: single messages; 3: all identities on the gateway's own link)", [],
    () => up.state().batchVersion ?? 0);
}
