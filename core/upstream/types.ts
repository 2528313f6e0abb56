import type { IdentityId } from "../message.js";

/** `connected`: authenticated to the parent; `connecting`: an attempt is under way; `offline`: waiting to retry. */
export type UpstreamStatus = "connecting" | "connected" | "offline" | "stopped";

export type UpstreamTransport = "amqps" | "wss";

/** What `strata child list` / `strata check` show about a gateway's link to its parent. */
export interface UpstreamState {
  status: UpstreamStatus;
  /** ms since the epoch when `status` last changed. */
  since: number;
  /** The parent as configured: `hostname` (and the address actually dialled). */
  parent: string;
  /** The transport of the current (or last) connection. */
  transport?: UpstreamTransport;
  /** Connections lost after they were up (not failed attempts). */
  reconnects: number;
  /** Failed connection attempts since the last successful one. */
  failedAttempts: number;
  lastError?: string;
  /** Messages the parent accepted (durable there). */
  sent: number;
  /** Messages handed back to the queue for a retry (released, link lost, …). */
  retried: number;
  /** Messages refused for good (dead-lettered by the drain). */
  refused: number;
  /** Per-identity sender links currently open. */
  openLinks: number;
  /**
   * The batched-transfer version the parent takes on the current (or last) connection: 0 single messages,
   * 1 AMQP messages, 2 Strata records per identity, 3 every identity's records on this gateway's own link.
   */
  batchVersion?: 0 | 1 | 2 | 3;
}

/** The child side of the gateway-to-gateway link (TOKENS.Upstream, `Gateway.upstream`). */
export interface Upstream {
  state(): UpstreamState;
  /** Called on every status change; returns the unsubscribe function. */
  onState(listener: (state: UpstreamState) => void): () => void;
  /** Resolves when connected (at once if already); rejects when the signal aborts or the link stops. */
  whenConnected(signal?: AbortSignal): Promise<void>;
  /** Identities with an open sender link. */
  linkedIdentities(): IdentityId[];
}
