import type { Logger } from "../log.js";
import type { EndpointQueue, Lease } from "../store/types.js";
import type { DeliveryOutcome } from "./types.js";

/**
 * The reason a drain's wake-up signal is aborted with. abort() without one builds a DOMException, stack trace
 * and all, on every wait: about 1% of a gateway's CPU at 5k msg/s.
 */
const WOKEN = Object.freeze({ name: "Woken", message: "the drain's wait ended" });

/** Told to a consumer with each batch. */
export interface DeliverContext {
  /**
   * An earlier batch of this drain is still unsettled. A consumer that keeps per-source order by sending on
   * one connection must then refuse ("retry", nothing sent) if its connection is not the one the earlier
   * batch went out on: a batch sent on a fresh connection could overtake the earlier batch's retries.
   */
  pipelined: boolean;
}

export type Deliver = (leases: readonly Lease[], signal: AbortSignal, ctx: DeliverContext) => Promise<DeliveryOutcome[]>;

export interface DrainOptions {
  queue: EndpointQueue;
  deliver: Deliver;
  batchSize: number;
  /** Batches handed to the consumer before the oldest is settled (default 1). */
  pipeline?: number;
  logger: Logger;
  /** Retries back off from `minBackoffMs`, doubling, with jitter, capped at `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A message handed out this many times without success goes to the dead-letter area. */
  maxAttempts?: number;
}

interface InFlight {
  leases: readonly Lease[];
  outcomes: Promise<DeliveryOutcome[]>;
  done: boolean;
}

/**
 * The one loop that empties an endpoint queue: lease a batch, deliver it, then ack what was delivered,
 * dead-letter what never can be, and release the rest for a retry after a jittered backoff. A retried
 * message goes back before newer ones of its source, so per-source order holds; a dead-lettered one never
 * blocks the messages behind it. The backoff is capped at a few seconds: a hop that comes back is drained at
 * once, not after a minute (iotedge PR #7528).
 *
 * With `pipeline` > 1 the next batches are leased and handed over while the oldest waits for its
 * settlement, so a link's round trip no longer idles both ends between batches. Batches are settled in the
 * order they were handed out; once one comes back with retries no new batch starts until every batch in
 * flight is settled and the backoff has passed, so retries go out again before anything newer.
 */
export class Drain {
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private backoffMs = 0;
  private pendingAck: Promise<void> = Promise.resolve();

  constructor(private readonly opts: DrainOptions) {}

  start(): void {
    this.running ??= this.loop().catch((err: unknown) => {
      if (!this.abort.signal.aborted) this.opts.logger.error({ err, endpoint: this.opts.queue.endpoint }, "endpoint drain stopped");
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
    await this.pendingAck;
  }

  private async loop(): Promise<void> {
    const { queue, batchSize } = this.opts;
    const pipeline = Math.max(1, this.opts.pipeline ?? 1);
    const signal = this.abort.signal;
    const inFlight: InFlight[] = [];
    // Set the moment any batch comes back with a retry, even one behind the oldest: a batch leased after
    // that could overtake the retried messages, so none is until every batch out has been settled.
    let failing = false;
    try {
      while (!signal.aborted) {
        if (!failing && inFlight.length < pipeline) {
          const leases = await queue.lease(batchSize);
          if (leases.length > 0) {
            const batch: InFlight = { leases, done: false, outcomes: this.deliverSafely(leases, signal, { pipelined: inFlight.length > 0 }) };
            void batch.outcomes.then((outcomes) => {
              batch.done = true;
              if (outcomes.includes("retry")) failing = true;
            });
            inFlight.push(batch);
            continue;
          }
          if (inFlight.length === 0) {
            await queue.waitAvailable(signal);
            continue;
          }
          // Room for another batch: wake on whichever comes first, new messages or the oldest settling.
          const wake = new AbortController();
          const onAbort = () => wake.abort(WOKEN);
          signal.addEventListener("abort", onAbort, { once: true });
          await Promise.race([inFlight[0]!.outcomes, queue.waitAvailable(wake.signal)]);
          wake.abort(WOKEN);
          signal.removeEventListener("abort", onAbort);
          if (!inFlight[0]!.done) continue;
        }
        const oldest = inFlight.shift()!;
        const outcomes = await oldest.outcomes;
        await this.pendingAck;
        await this.settle(oldest.leases, outcomes);
        if (failing && inFlight.length === 0) {
          await this.backoff(signal);
          failing = false;
        } else if (!failing) this.backoffMs = 0;
      }
    } finally {
      // Stopping: whatever is still out comes back (consumers answer an aborted signal promptly) and is settled.
      for (const batch of inFlight.splice(0)) {
        const outcomes = await batch.outcomes;
        await this.pendingAck;
        await this.settle(batch.leases, outcomes).catch(() => queue.release(batch.leases));
      }
    }
  }

  private async deliverSafely(leases: readonly Lease[], signal: AbortSignal, ctx: DeliverContext): Promise<DeliveryOutcome[]> {
    try {
      const outcomes = await this.opts.deliver(leases, signal, ctx);
      if (outcomes.length !== leases.length) throw new Error(`consumer returned ${outcomes.length} outcomes for ${leases.length} messages`);
      return outcomes;
    } catch (err) {
      if (!signal.aborted) this.opts.logger.warn({ err, endpoint: this.opts.queue.endpoint, count: leases.length }, "endpoint delivery failed, will retry");
      return leases.map(() => "retry");
    }
  }

  /** Returns whether anything is to be retried. */
  private async settle(leases: readonly Lease[], outcomes: readonly DeliveryOutcome[]): Promise<boolean> {
    const { queue, logger } = this.opts;
    const maxAttempts = this.opts.maxAttempts ?? Infinity;
    const delivered: Lease[] = [];
    const retry: Lease[] = [];
    for (let i = 0; i < leases.length; i++) {
      const lease = leases[i]!;
      const outcome = outcomes[i]!;
      if (outcome === "delivered") delivered.push(lease);
      else if (outcome === "retry" && lease.attempts + 1 < maxAttempts) retry.push(lease);
      else {
        const reason = outcome === "retry" ? `not delivered after ${maxAttempts} attempts` : outcome.deadLetter;
        logger.warn({ endpoint: queue.endpoint, messageId: lease.message.id, source: lease.message.source, reason }, "message dead-lettered");
        await queue.deadLetter(lease, reason);
      }
    }
    if (delivered.length) this.ackBehind(delivered);
    if (retry.length) queue.release(retry);
    return retry.length > 0;
  }

  /**
   * The ack (a durable write) overlaps the next batch's delivery instead of blocking it: acked messages stay
   * leased until it lands, so none is handed out twice, and at most one ack is outstanding. A failed ack
   * releases them: they are delivered again (at least once), never lost.
   */
  private ackBehind(delivered: Lease[]): void {
    const { queue, logger } = this.opts;
    const previous = this.pendingAck;
    this.pendingAck = (async () => {
      await previous;
      try {
        await queue.ack(delivered);
      } catch (err) {
        logger.warn({ err, endpoint: queue.endpoint, count: delivered.length }, "ack failed; messages will be delivered again");
        queue.release(delivered);
      }
    })();
  }

  private async backoff(signal: AbortSignal): Promise<void> {
    const min = this.opts.minBackoffMs ?? 50;
    const max = this.opts.maxBackoffMs ?? 2000;
    this.backoffMs = Math.min(max, this.backoffMs ? this.backoffMs * 2 : min);
    const wait = this.backoffMs / 2 + Math.random() * (this.backoffMs / 2);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, wait);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
