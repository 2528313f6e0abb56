// The child side of the gateway-to-gateway link: one AMQP connection to the parent, authenticated as this
// gateway, carrying a sender link per identity in scope, and the consumer that drains `$upstream` over it.
import type { Connection, Container } from "rhea";
import { StrataError } from "../errors.js";
import type { DeliverContext, DeliveryOutcome, EndpointConsumer } from "../hub/types.js";
import { signSas } from "../identity/sas.js";
import type { Identities } from "../identity/types.js";
import type { Logger } from "../log.js";
import type { IdentityId, Message } from "../message.js";
import type { Lease } from "../store/types.js";
import { BATCH_MAX_BYTES, BATCH_MAX_MESSAGES, encodeBatch, encodeRecordBatch, offeredBatchVersion } from "./batch.js";
import { CbsChannel } from "./cbs.js";
import { toAmqpMessage } from "./convert.js";
import { DownwardLinks, type DownwardHub } from "./downward.js";
import { abandon, describeError, dial, dialAddress, type DialTarget } from "./dial.js";
import { outcomeForRefusal } from "./refusals.js";
import { IdentitySender, type Settlement } from "./sender.js";
import type { Upstream, UpstreamState, UpstreamStatus, UpstreamTransport } from "./types.js";

export interface UpstreamLinkOptions {
  /** This gateway's device id: the identity it authenticates as. */
  self: string;
  /** The hub name tokens are signed for (`{hub}/devices/{self}`). */
  hub: string;
  parent: { hostname: string; address?: string; amqp_port: number; https_port: number; transport: "amqps" | "wss" | "auto" };
  /** PEM trust bundle the parent's certificate must chain to. */
  ca: string;
  /** This gateway's SAS key (base64), read from `[identity] key_file`; a function to pick up a rotated key. */
  key: string | (() => string);
  identities: Pick<Identities, "authChain"> & Partial<Pick<Identities, "on">>;
  logger: Logger;
  /**
   * The gateway's hub: with it the link also carries traffic DOWN (methods, C2D, desired patches) for every
   * identity connected here, and twin reads / reported patches go up through the parent (downward.ts).
   */
  localHub?: DownwardHub;
  /** Lifetime of each put token; renewed at 80 % of it. Default 3600 s. */
  tokenTtlSecs?: number;
  /** One connect (dial + open + put-token) may take this long. Default 10 s. */
  connectTimeoutMs?: number;
  /** Reconnect backoff: from `min`, doubling, jittered, capped at `max` (a few seconds, not 60 s per hop). */
  backoffMs?: { min: number; max: number };
  /** A sender link unused this long is closed. Default 60 s. */
  idleLinkMs?: number;
  /** Messages per drained batch (spread over the identities' links). Default 500. */
  batchSize?: number;
  /** Batches in flight before the oldest is settled (see Drain). Default 2 (see the constructor). */
  pipeline?: number;
  /** Send first attempts in batched transfers when the parent offers them (batch.ts). Default true. */
  batches?: boolean;
  /** The highest batch version to use (tests pin 1 or 2 to exercise them). Default 3. */
  batchVersion?: 1 | 2 | 3;
  /** AMQP idle timeout advertised to the parent. Default 20 s. */
  idleTimeoutMs?: number;
  now?: () => number;
}

interface Live {
  connection: Connection;
  container: Container;
  transport: UpstreamTransport;
  cbs: CbsChannel;
  senders: Map<IdentityId, IdentitySender>;
  /** Resolves once the connection is gone (dropped by us or lost). */
  closed: Promise<void>;
  markClosed: () => void;
  renewTimer?: NodeJS.Timeout;
  /** Set by `drop`: nothing more goes out on it, even before the connect loop has noticed. */
  dead?: boolean;
  /** The batch version used with this parent (batch.ts); 0 when it takes none. */
  batches: 0 | 1 | 2 | 3;
}

/**
 * Keeps one authenticated connection to the parent up (reconnecting with a capped, jittered backoff) and
 * implements the `$upstream` consumer: a batch is pipelined over per-identity links, each message settled
 * by the parent only after its own durable write; accepted → delivered, a permanent refusal → dead letter
 * (refusals.ts), anything else → retry. While disconnected, `deliver` waits instead of failing.
 */
export class UpstreamLink implements Upstream, EndpointConsumer {
  readonly batchSize: number;
  readonly pipeline: number;
  private target: DialTarget;
  /** The connection the latest batch went out on (a pipelined batch must use the same one). */
  private lastBatchOn: Live | undefined;
  /** The latest batch went out whole on this gateway's own link, in version 3 transfers (see `deliver`). */
  private lastBatchMixed = false;
  /**
   * Some message came back not accepted (or its link closed): batches already behind it must not go out
   * before the drain has put it back in the queue — until the next unpipelined batch, nothing pipelined is sent.
   */
  private barrier = false;
  private readonly now: () => number;
  private readonly stopController = new AbortController();
  private readonly listeners = new Set<(s: UpstreamState) => void>();
  private live: Live | undefined;
  private running: Promise<void> | undefined;
  private idleSweep: NodeJS.Timeout | undefined;
  private snapshot: UpstreamState;
  /** Downward traffic (methods, C2D, twins) for the identities connected here; set when a hub was given. */
  readonly downward: DownwardLinks | undefined;

  constructor(private readonly opts: UpstreamLinkOptions) {
    this.batchSize = opts.batchSize ?? 500;
    // A second batch out hides the round trip (send, the parent's durable write, settle) that otherwise idles
    // both ends between batches; order holds (see Drain and the barrier below). The parent must grant a
    // gateway's links credit for all of it (plugins.amqp.gateway_link_credit): on per-link credit alone, a
    // sibling child's six busy leaves would outrun this child's one as seven equal links and the per-child
    // share would be lost (test/hierarchy/fairness).
    this.pipeline = opts.pipeline ?? 2;
    this.now = opts.now ?? Date.now;
    this.target = {
      hostname: opts.parent.hostname,
      ...(opts.parent.address ? { address: opts.parent.address } : {}),
      amqpPort: opts.parent.amqp_port,
      httpsPort: opts.parent.https_port,
      ca: opts.ca,
      containerId: opts.self,
      idleTimeoutMs: opts.idleTimeoutMs ?? 20_000,
    };
    this.downward = opts.localHub ? new DownwardLinks({ self: opts.self, hub: opts.localHub, identities: opts.identities, logger: opts.logger }) : undefined;
    this.snapshot = {
      status: "offline", since: this.now(),
      parent: opts.parent.address && opts.parent.address !== opts.parent.hostname ? `${opts.parent.hostname} (${opts.parent.address})` : opts.parent.hostname,
      reconnects: 0, failedAttempts: 0, sent: 0, retried: 0, refused: 0, openLinks: 0,
    };
  }

  // ---- lifecycle -----------------------------------------------------------------------------------

  /** Starts connecting in the background; never throws (failures show in `state()` and the log). */
  start(): void {
    if (this.stopController.signal.aborted) return;
    this.downward?.start();
    this.running ??= this.connectLoop();
    const idleMs = this.opts.idleLinkMs ?? 60_000;
    this.idleSweep ??= setInterval(() => this.closeIdleLinks(idleMs), Math.max(1000, idleMs / 2));
    this.idleSweep.unref();
  }

  /** A reloaded trust bundle (root CA rollover): the next dial verifies the parent against it; the open connection stays. */
  setTrustBundle(ca: string): void {
    this.target = { ...this.target, ca };
  }

  /** Closes the connection; deliveries in flight end as "retry". Idempotent. */
  async stop(): Promise<void> {
    this.stopController.abort();
    clearInterval(this.idleSweep);
    this.downward?.stop();
    if (this.live) this.drop(this.live, "gateway stopping");
    await this.running;
    this.setStatus("stopped");
  }

  // ---- state -----------------------------------------------------------------------------------------

  state(): UpstreamState {
    return { ...this.snapshot, openLinks: this.live ? [...this.live.senders.values()].filter((s) => !s.isClosed).length : 0 };
  }

  onState(listener: (s: UpstreamState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  whenConnected(signal?: AbortSignal): Promise<void> {
    if (this.snapshot.status === "connected") return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const stopSignal = this.stopController.signal;
      const cleanup = () => {
        off();
        signal?.removeEventListener("abort", onAbort);
        stopSignal.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        cleanup();
        reject(new StrataError("STRATA_UPSTREAM_STOPPED", "stopped while waiting for the parent connection"));
      };
      const off = this.onState((s) => {
        if (s.status === "connected") {
          cleanup();
          resolve();
        }
      });
      if (signal?.aborted || stopSignal.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      stopSignal.addEventListener("abort", onAbort, { once: true });
    });
  }

  linkedIdentities(): IdentityId[] {
    return this.live ? [...this.live.senders.values()].filter((s) => !s.isClosed).map((s) => s.identity) : [];
  }

  private setStatus(status: UpstreamStatus, patch: Partial<UpstreamState> = {}): void {
    const changed = status !== this.snapshot.status;
    this.snapshot = { ...this.snapshot, ...patch, status, ...(changed ? { since: this.now() } : {}) };
    if (!changed) return;
    const state = this.state();
    for (const listener of this.listeners) {
      try {
        listener(state);
      } catch (err) {
        this.opts.logger.error({ err }, "upstream state listener failed");
      }
    }
  }

  // ---- connection ------------------------------------------------------------------------------------

  private async connectLoop(): Promise<void> {
    const signal = this.stopController.signal;
    let attempt = 0;
    while (!signal.aborted) {
      this.setStatus("connecting");
      try {
        const live = await this.connectOnce();
        if (signal.aborted) {
          this.drop(live, "gateway stopping");
          break;
        }
        attempt = 0;
        this.live = live;
        this.setStatus("connected", { transport: live.transport, failedAttempts: 0, batchVersion: live.batches });
        this.opts.logger.info({ parent: dialAddress(this.target, live.transport), transport: live.transport, batchVersion: live.batches }, "upstream link connected");
        this.downward?.connected(live.connection);
        await live.closed;
        this.live = undefined;
        if (signal.aborted) break;
        this.snapshot.reconnects++;
        this.setStatus("offline");
        this.opts.logger.warn({ parent: this.snapshot.parent, err: this.snapshot.lastError }, "upstream link lost");
      } catch (err) {
        if (signal.aborted) break;
        attempt++;
        this.setStatus("offline", { lastError: describeError(err), failedAttempts: this.snapshot.failedAttempts + 1 });
        // The first failure is worth a warning; a parent that stays away should not flood the journal.
        const level = attempt === 1 || attempt % 20 === 0 ? "warn" : "debug";
        this.opts.logger[level]({ err, parent: this.snapshot.parent, attempt }, "upstream connect failed");
      }
      await this.backoff(attempt, signal);
    }
  }

  /** Jittered exponential backoff, capped at a few seconds; a lost connection retries almost at once. */
  private backoff(attempt: number, signal: AbortSignal): Promise<void> {
    const { min, max } = this.opts.backoffMs ?? { min: 100, max: 5000 };
    const base = Math.min(max, min * 2 ** Math.max(0, attempt - 1));
    const wait = base / 2 + Math.random() * (base / 2);
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, wait);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Dials (amqps, wss, or amqps then wss for "auto") and authenticates; resolves with a live connection. */
  private async connectOnce(): Promise<Live> {
    const transports: UpstreamTransport[] = this.opts.parent.transport === "auto" ? ["amqps", "wss"] : [this.opts.parent.transport];
    const timeoutMs = this.opts.connectTimeoutMs ?? 10_000;
    let lastErr: unknown;
    for (const transport of transports) {
      let dialed: { connection: Connection; container: Container };
      try {
        dialed = await dial(this.target, transport, timeoutMs);
      } catch (err) {
        lastErr = err;
        if (transports.length > 1) this.opts.logger.debug({ err, transport }, "upstream transport failed, trying the next");
        continue;
      }
      // Authentication failures are not a transport problem: no fallback to the next transport.
      return this.authenticate(dialed.connection, dialed.container, transport, timeoutMs);
    }
    throw lastErr;
  }

  private async authenticate(connection: Connection, container: Container, transport: UpstreamTransport, timeoutMs: number): Promise<Live> {
    let markClosed!: () => void;
    const closed = new Promise<void>((resolve) => (markClosed = resolve));
    const live: Live = {
      connection, container, transport, cbs: new CbsChannel(connection), senders: new Map(), closed, markClosed,
      batches: this.opts.batches === false ? 0 : (Math.min(offeredBatchVersion(connection as never), this.opts.batchVersion ?? 3) as 0 | 1 | 2 | 3),
    };
    const onDown = (ctx: { error?: unknown; connection?: { error?: unknown } }) => {
      const error = ctx.error ?? ctx.connection?.error;
      if (error) this.snapshot.lastError = describeError(error);
      this.drop(live, error ? describeError(error) : "connection closed by the parent");
    };
    connection.on("disconnected", onDown);
    connection.on("connection_close", onDown);
    connection.on("connection_error", onDown);
    connection.on("protocol_error", onDown);
    connection.on("error", onDown);
    try {
      await Promise.race([
        this.putToken(live, timeoutMs),
        closed.then(() => {
          throw new StrataError("STRATA_UPSTREAM_CONNECT", `the parent closed the connection during authentication: ${this.snapshot.lastError ?? "no reason given"}`);
        }),
      ]);
    } catch (err) {
      this.drop(live, "authentication failed");
      throw err;
    }
    return live;
  }

  private async putToken(live: Live, timeoutMs: number): Promise<void> {
    const ttl = this.opts.tokenTtlSecs ?? 3600;
    const resource = `${this.opts.hub}/devices/${this.opts.self}`;
    const key = typeof this.opts.key === "function" ? this.opts.key() : this.opts.key;
    const token = signSas({ resource, key, expirySecs: Math.floor(this.now() / 1000) + ttl });
    await live.cbs.putToken({ resource, token }, timeoutMs);
    clearTimeout(live.renewTimer);
    live.renewTimer = setTimeout(() => {
      this.putToken(live, timeoutMs).catch((err: unknown) => {
        this.opts.logger.warn({ err }, "upstream token renewal failed, reconnecting");
        this.snapshot.lastError = describeError(err);
        this.drop(live, "token renewal failed");
      });
    }, ttl * 800);
    live.renewTimer.unref();
  }

  /** Tears a connection down: pending sends end as lost (→ retry), links are forgotten. */
  private drop(live: Live, reason: string): void {
    live.dead = true;
    this.barrier = true;
    clearTimeout(live.renewTimer);
    live.cbs.close();
    for (const sender of live.senders.values()) sender.fail({ kind: "lost", reason });
    live.senders.clear();
    if (this.live === live || this.live === undefined) this.downward?.disconnected();
    abandon(live.connection);
    live.markClosed();
  }

  private closeIdleLinks(idleMs: number): void {
    const live = this.live;
    if (!live) return;
    const cutoff = this.now() - idleMs;
    for (const [id, sender] of live.senders) {
      if (sender.isClosed) live.senders.delete(id);
      else if (sender.inFlight === 0 && sender.lastUsed < cutoff) {
        live.senders.delete(id);
        sender.close();
        this.opts.logger.debug({ identity: id }, "idle upstream link closed");
      }
    }
  }

  // ---- the $upstream consumer -----------------------------------------------------------------------------

  /**
   * Sends a batch: per identity in order on that identity's link, identities side by side. Waits (does not
   * fail) while the parent is unreachable, so the drain does not spin through retries.
   */
  async deliver(leases: readonly Lease[], signal: AbortSignal, ctx?: DeliverContext): Promise<DeliveryOutcome[]> {
    const outcomes: DeliveryOutcome[] = leases.map(() => "retry");
    // Version 3: first attempts of every identity in one stream of transfers on this gateway's own link. Not
    // with a retried message in the batch (it goes alone on its identity's link, as before), and not pipelined
    // behind a batch that went per identity (it goes per identity too): per-source order holds because each
    // source's messages of a batch travel on one link, in order, and batches on one link keep theirs. Behind a
    // mixed batch, one that cannot go mixed (a source just left the scope) is not sent: the drain retries it
    // once the mixed one is settled. (Refusing the other way round turned every batch pipelined behind a retry
    // into retries, which go alone: a drain after a restart fell to a few hundred messages a second.) Decided
    // here, before any wait, so that a batch pipelined behind this one sees how this one goes.
    const eligible = this.live?.batches === 3 && this.firstAttemptsInScope(leases);
    if (ctx?.pipelined && this.lastBatchMixed && !eligible) {
      this.barrier = true;
      return outcomes;
    }
    const planned = eligible && (!ctx?.pipelined || this.lastBatchMixed);
    this.lastBatchMixed = planned;
    if (ctx?.pipelined) {
      // Behind an unsettled batch: only on the same connection and while nothing failed, or this batch could
      // overtake the earlier one's retries.
      if (this.barrier || !this.live || this.live.dead || this.live !== this.lastBatchOn) {
        this.barrier = true; // and every batch behind this one, until the drain has put them all back
        return outcomes;
      }
    } else {
      try {
        await this.whenConnected(signal);
      } catch {
        return outcomes; // stopping
      }
      this.barrier = false;
    }
    const live = this.live;
    if (!live || live.dead) return outcomes;
    const mixed = planned && live.batches === 3;
    this.lastBatchOn = live;
    // Mixed: all of them, in order, on this gateway's own link; otherwise each identity's on its own link.
    const groups: [IdentityId, number[]][] = [];
    if (mixed) groups.push([this.opts.self, leases.map((_, i) => i)]);
    else {
      const bySource = new Map<IdentityId, number[]>();
      for (let i = 0; i < leases.length; i++) {
        const source = leases[i]!.message.source;
        let list = bySource.get(source);
        if (!list) bySource.set(source, (list = []));
        list.push(i);
      }
      groups.push(...bySource);
    }
    const aborted = new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await Promise.all(groups.map(async ([source, indexes]) => {
      const settlements = await Promise.race([
        this.sendAll(live, source, indexes.map((i) => leases[i]!), ctx?.pipelined ?? false, mixed),
        aborted.then(() => undefined),
      ]);
      if (!settlements) return;
      indexes.forEach((leaseIndex, k) => {
        outcomes[leaseIndex] = this.outcome(settlements[k]!, leases[leaseIndex]!);
      });
    }));
    return outcomes;
  }

  /** Every lease a first attempt, from an identity still in this gateway's scope (one chain walk per source). */
  private firstAttemptsInScope(leases: readonly Lease[]): boolean {
    const checked = new Set<IdentityId>();
    for (const l of leases) {
      if (l.attempts > 0) return false;
      const source = l.message.source;
      if (checked.has(source)) continue;
      if (!this.opts.identities.authChain(source)) return false;
      checked.add(source);
    }
    return true;
  }

  /** One transfer's payload in the batch version this parent takes (3: several identities, on our own link). */
  private encodeChunk(live: Live, chunk: readonly Message[], now: number, mixed: boolean): { payload: Buffer; count: number } {
    const payload = mixed ? encodeRecordBatch(chunk, now, 3)
      : live.batches >= 2 ? encodeRecordBatch(chunk, now) : encodeBatch(chunk.map((m) => toAmqpMessage(m, now)));
    return { payload, count: chunk.length };
  }

  /**
   * The same identity's messages, in order, on its one link; or (`mixed`, source = this gateway) the first
   * attempts of any identities, in order, in version 3 transfers on this gateway's own link.
   */
  private async sendAll(live: Live, source: IdentityId, leases: readonly Lease[], pipelined: boolean, mixed = false): Promise<Settlement[]> {
    const chain = this.opts.identities.authChain(source);
    if (!chain) {
      // No longer in this gateway's scope (removed here after it was queued): refused as the parent would.
      const refused: Settlement = { kind: "rejected", refusal: { condition: "amqp:unauthorized-access", description: `${source} is not in ${this.opts.self}'s scope` } };
      return leases.map(() => refused);
    }
    const sender = this.senderFor(live, source, chain);
    if (!sender.isOpen) {
      try {
        await sender.ready;
      } catch {
        const reason = sender.closeReason ?? { kind: "lost" as const, reason: "link refused" };
        return leases.map(() => reason);
      }
      if (pipelined && (this.barrier || live.dead)) return leases.map(() => ({ kind: "lost", reason: "an earlier batch is being retried" }));
    }
    const now = this.now();
    const watch = (s: Settlement): Settlement => {
      if (s.kind !== "accepted") this.barrier = true;
      return s;
    };
    // First attempts travel in batches (when the parent takes them); a retried message goes alone, so a
    // refusal it meets is its own.
    const settlements: Promise<Settlement>[] = [];
    let chunk: Message[] = [];
    let bytes = 0;
    const flush = () => {
      if (chunk.length === 0) return;
      const sent = (chunk.length === 1 && !mixed
        ? sender.send(toAmqpMessage(chunk[0]!, now), now)
        : sender.sendBatch(this.encodeChunk(live, chunk, now, mixed), now).then(asBatchOutcome)).then(watch);
      for (let i = 0; i < chunk.length; i++) settlements.push(sent);
      chunk = [];
      bytes = 0;
    };
    for (const l of leases) {
      const size = l.message.body.length;
      if (!mixed && (!live.batches || l.attempts > 0 || size > BATCH_MAX_BYTES / 2)) {
        flush();
        settlements.push(sender.send(toAmqpMessage(l.message, now), now).then(watch));
        continue;
      }
      // Mixed, a message big enough to be refused for its size goes in a transfer of its own (as it goes alone per
      // identity): a refusal then holds back no message sent after it, which would otherwise overtake it.
      const alone = mixed && size > BATCH_MAX_BYTES / 2;
      if (alone || chunk.length >= BATCH_MAX_MESSAGES || bytes + size > BATCH_MAX_BYTES) flush();
      chunk.push(l.message);
      bytes += size;
      if (alone) flush();
    }
    flush();
    return Promise.all(settlements);
  }

  private senderFor(live: Live, source: IdentityId, chain: readonly string[]): IdentitySender {
    const existing = live.senders.get(source);
    if (existing && !existing.isClosed) return existing;
    const sender = new IdentitySender(live.connection, source, chain, this.now());
    // Synchronously, as the link closes: a batch sent after this on a fresh link could overtake its retries.
    sender.onClose(() => (this.barrier = true));
    live.senders.set(source, sender);
    this.opts.logger.debug({ identity: source, chain }, "upstream link opened");
    return sender;
  }

  private outcome(settlement: Settlement, lease: Lease): DeliveryOutcome {
    switch (settlement.kind) {
      case "accepted":
        this.snapshot.sent++;
        return "delivered";
      case "rejected": {
        const outcome = outcomeForRefusal(settlement.refusal, lease.attempts);
        if (outcome === "retry") this.snapshot.retried++;
        else this.snapshot.refused++;
        if (outcome !== "retry" || lease.attempts === 0) {
          this.opts.logger.warn({ messageId: lease.message.id, source: lease.message.source, refusal: settlement.refusal, attempts: lease.attempts + 1 }, "parent refused a message");
        }
        return outcome;
      }
      default:
        this.snapshot.retried++;
        return "retry";
    }
  }
}

/** A refused batch is no verdict on any one message in it: each is retried alone (see sendAll). */
function asBatchOutcome(settlement: Settlement): Settlement {
  return settlement.kind === "rejected" ? { kind: "released" } : settlement;
}
