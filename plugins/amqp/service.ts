import type { Delivery, Receiver } from "rhea";
import {
  FEEDBACK, isStrataError,
  type DeliveryOutcome, type EndpointConsumer, type Hub, type Identities, type Lease, type Logger,
} from "../../core/index.js";
import { c2dTargetOf } from "./addresses.js";
import type { AmqpConfig } from "./config.js";
import { inboundFromAmqp, jsonBody, type AmqpMessageIn } from "./convert.js";
import type { OutboundLink } from "./outbound.js";

export const FEEDBACK_CONTENT_TYPE = "application/vnd.microsoft.iothub.feedback.json";

/**
 * The service side on the root (what `azure-iothub`'s Client uses): C2D to any device on `/messages/devicebound`
 * and the C2D feedback records on `/messages/serviceBound/feedback`, drained from the hub's durable `$feedback`.
 */
export class ServiceSide implements EndpointConsumer {
  private readonly feedbackLinks = new Set<OutboundLink>();
  private waiters: Array<() => void> = [];
  private stopConsuming: (() => void) | undefined;
  readonly batchSize: number;

  constructor(
    private readonly hub: Hub,
    private readonly identities: Identities,
    private readonly config: AmqpConfig,
    private readonly log: Logger,
  ) {
    this.batchSize = config.feedback_batch;
  }

  start(): void {
    this.stopConsuming = this.hub.consume(FEEDBACK, this);
  }

  stop(): void {
    this.stopConsuming?.();
    this.stopConsuming = undefined;
    this.wake();
  }

  addFeedbackLink(link: OutboundLink): void {
    this.feedbackLinks.add(link);
    this.wake();
  }

  removeFeedbackLink(link: OutboundLink): void {
    this.feedbackLinks.delete(link);
  }

  /** One C2D message from the service: queued durably for its device, then accepted. */
  async onC2D(receiver: Receiver, delivery: Delivery, msg: AmqpMessageIn): Promise<void> {
    const to = typeof msg.to === "string" ? msg.to : undefined;
    const target = c2dTargetOf(to);
    try {
      if (!target) {
        delivery.reject({ condition: "amqp:invalid-field", description: `C2D "to" ${JSON.stringify(to)} is not /devices/{id}/messages/devicebound` });
        return;
      }
      if (!this.identities.get(target)) {
        delivery.reject({ condition: "amqp:not-found", description: `device ${target} is not registered on this hub` });
        return;
      }
      const inbound = inboundFromAmqp(msg);
      await this.hub.sendC2D(target, inbound);
      delivery.accept();
    } catch (err) {
      const quota = isStrataError(err, "STRATA_STORE_QUOTA");
      this.log.warn({ err, target }, "service c2d message refused");
      delivery.reject({
        condition: quota ? "amqp:resource-limit-exceeded" : "amqp:internal-error",
        description: (err as Error).message ?? String(err),
      });
    } finally {
      if (receiver.is_open()) receiver.add_credit(1);
    }
  }

  /** The `$feedback` drain: one AMQP message per batch, body = JSON array of IoT Hub feedback records. */
  async deliver(leases: readonly Lease[], signal: AbortSignal): Promise<DeliveryOutcome[]> {
    const link = await this.feedbackLink(signal);
    if (!link) return leases.map(() => "retry");
    const records: unknown[] = [];
    for (const lease of leases) {
      try {
        records.push(JSON.parse(lease.message.body.toString("utf8")));
      } catch (err) {
        this.log.warn({ err, id: lease.message.id }, "feedback record is not JSON");
      }
    }
    const outcome = await link.send({
      body: jsonBody(records),
      content_type: FEEDBACK_CONTENT_TYPE,
      content_encoding: "utf-8",
      message_id: `feedback-${leases[0]?.message.id ?? "0"}`,
    });
    // Delivered only once the service client accepted (ServiceReceiver.complete); anything else comes again.
    return leases.map(() => (outcome === "accepted" ? "delivered" : "retry"));
  }

  private async feedbackLink(signal: AbortSignal): Promise<OutboundLink | undefined> {
    const deadline = Date.now() + this.config.feedback_wait_ms;
    for (;;) {
      for (const link of this.feedbackLinks) if (!link.closed) return link;
      const left = deadline - Date.now();
      if (left <= 0 || signal.aborted || !this.stopConsuming) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done(): void {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        }
        signal.addEventListener("abort", done, { once: true });
        this.waiters.push(done);
      });
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
