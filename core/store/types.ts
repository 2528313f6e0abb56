import type { Message } from "../message.js";

/**
 * A namespaced durable key-value map (a sublevel of the store). Identities, twins and sessions keep their
 * records in one. Writes are durable (group-committed, synced) when the promise resolves.
 */
export interface Kv<V = unknown> {
  get(key: string): Promise<V | undefined>;
  put(key: string, value: V): Promise<void>;
  del(key: string): Promise<void>;
  /** Every entry whose key starts with `prefix`, in key order. */
  entries(prefix?: string): AsyncIterable<[string, V]>;
}

/** One message taken from an endpoint queue and not yet acknowledged. */
export interface Lease {
  readonly message: Message;
  readonly endpoint: string;
  /** How many times it was handed out before (0 on first delivery); counted in memory, 0 again after a restart. */
  readonly attempts: number;
}

/**
 * Why a message left a queue without being delivered, or was never queued: `ttl` expired (at enqueue, at
 * lease or by the sweep); `quota` an enqueue refused with STRATA_STORE_QUOTA (nothing acknowledged is ever
 * dropped for quota); `dead-letter` moved to the dead-letter area.
 */
export type DropCause = "ttl" | "quota" | "dead-letter";

export interface EndpointQueue {
  readonly endpoint: string;
  /**
   * Up to `max` messages not yet leased, fairly across priority lanes (a lower priority still gets its
   * share) and across sources, each source's messages in order. Expired messages are dropped and counted,
   * never returned. Empty when nothing is available (see `waitAvailable`).
   */
  lease(max: number): Promise<Lease[]>;
  /** Delivered: removed durably. */
  ack(leases: readonly Lease[]): Promise<void>;
  /** Not delivered this time: available again, before newer messages of the same source. */
  release(leases: readonly Lease[]): void;
  /** Can never be delivered: moved durably to the dead-letter area with the reason; counted. */
  deadLetter(lease: Lease, reason: string): Promise<void>;
  /** Resolves when a message may be available to lease (or the signal aborts). */
  waitAvailable(signal?: AbortSignal): Promise<void>;
  /** Messages queued (leased ones included). */
  depth(): number;
  /** Age in ms of the oldest queued message, 0 when empty. */
  oldestAgeMs(): number;
}

export interface EnqueueOptions {
  /**
   * The fairness share the message is served and counted in (default: `message.source`). The hub sets the
   * first hop below this gateway: the child gateway whose link carried a forwarded message, the device itself
   * for a local one. Queues serve shares round-robin, then sources within a share; a share may hold at most
   * `shareQuota` of the quota while another share has messages queued.
   */
  share?: string;
  /**
   * The group inside the share (default: `message.source`): the hop below the share, so a share's queue is
   * served round-robin per child of that child (then FIFO), and the tree stays fair two levels down — a
   * gateway two hops up no longer serves a child's one busy leaf as one of seven equals beside a sibling's six.
   * Per-source order holds: a group's FIFO keeps its sources' messages in arrival order.
   */
  group?: string;
}

/** One message of an `enqueueMany` call and the endpoint queues it goes onto. */
export interface EnqueueItem {
  message: Message;
  endpoints: readonly string[];
  options?: EnqueueOptions;
}

export interface EnqueueResult {
  /** The id was seen before at this hop: nothing was written (counted as a duplicate). */
  duplicate: boolean;
}

export interface DeadLetter {
  message: Message;
  endpoint: string;
  reason: string;
  at: number;
}

export interface StoreStats {
  appended: number;
  acked: number;
  duplicates: number;
  dropped: Record<DropCause, number>;
  deadLettered: number;
  usedBytes: number;
  quotaBytes: number;
  /** Queued bytes per fairness share (shares with nothing queued are absent). */
  shares?: Record<string, number>;
  queues: Record<string, { depth: number; oldestAgeMs: number }>;
}

/**
 * The durable store (classic-level). A promise that resolves means the write is on disk: appends from
 * concurrent callers share one synced batch (group commit).
 */
export interface Store {
  open(): Promise<void>;
  close(): Promise<void>;
  /** The next Strata id for a message originating here: `{gatewayId}:{seq}`, seq persisted. */
  nextId(): string;
  /**
   * Durably enqueue one message onto each endpoint queue (atomically). Deduplicates by `message.id`
   * (remembered until the message's deadline). Rejects with a StrataError `STRATA_STORE_QUOTA` when the disk
   * quota is reached: the caller must not acknowledge the sender (back-pressure), nothing already
   * acknowledged is dropped. The same code when the message's share is over its part of the quota while other
   * shares have messages queued (see EnqueueOptions).
   */
  enqueue(message: Message, endpoints: readonly string[], options?: EnqueueOptions): Promise<EnqueueResult>;
  /**
   * `enqueue` for several messages in one durable write (one promise, one group-commit append): results in
   * order. A refusal of one item rejects the call; the items before it are written all the same.
   */
  enqueueMany(items: readonly EnqueueItem[]): Promise<EnqueueResult[]>;
  queue(endpoint: string): EndpointQueue;
  /** The dead-letter area, newest last. */
  deadLetters(limit?: number): Promise<DeadLetter[]>;
  stats(): StoreStats;
  kv<V = unknown>(namespace: string): Kv<V>;
}
