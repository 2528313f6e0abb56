import type { Logger } from "../log.js";
import type { EndpointQueue, Lease } from "../store/types.js";
import type { DeliveryOutcome } from "./types.js";

export type Deliver = (leases: readonly Lease[], signal: AbortSignal) => Promise<DeliveryOutcome[]>;

export interface DrainOptions {
  queue: EndpointQueue;
  deliver: Deliver;
  batchSize: number;
  logger: Logger;
  /** Retries back off from `minBackoffMs`, doubling, with jitter, capped at `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A message handed out this many times without success goes to the dead-letter area. */
  maxAttempts?: number;
}

/**
 * The one loop that empties an endpoint queue: lease a batch, deliver it, then ack what was delivered,
 * dead-letter what never can be, and release the rest for a retry after a jittered backoff. A retried
 * message goes back before newer ones of its source, so per-source order holds; a dead-lettered one never
 * blocks the messages behind it. The backoff is capped at a few seconds: a hop that comes back is drained at
 * once, not after a minute (iotedge PR #7528).
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
    const signal = this.abort.signal;
    while (!signal.aborted) {
      const leases = await queue.lease(batchSize);
      if (leases.length === 0) {
        await queue.waitAvailable(signal);
        continue;
      }
      const outcomes = await this.deliverSafely(leases, signal);
      await this.pendingAck;
      const retry = await this.settle(leases, outcomes);
      if (retry) await this.backoff(signal);
      else this.backoffMs = 0;
    }
  }

  private async deliverSafely(leases: readonly Lease[], signal: AbortSignal): Promise<DeliveryOutcome[]> {
    try {
      const outcomes = await this.opts.deliver(leases, signal);
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
