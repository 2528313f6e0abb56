import type { Delivery, EventContext, Sender } from "rhea";
import type { AmqpMessageOut } from "./convert.js";

/** How the peer settled one of our deliveries, or "closed" when the link went away first. */
export type Outcome = "accepted" | "rejected" | "released" | "modified" | "closed";

/**
 * A sender link towards a client, with the client's credit respected: messages wait in order until the
 * client grants credit, and each send resolves with the client's settlement.
 */
export class OutboundLink {
  private readonly queue: Array<{ msg: AmqpMessageOut; resolve: (o: Outcome) => void }> = [];
  private readonly pending = new Map<Delivery, (o: Outcome) => void>();
  private isClosed = false;

  constructor(readonly sender: Sender) {
    sender.on("sendable", () => this.flush());
    const settle = (outcome: Outcome) => (ctx: EventContext): void => {
      const d = ctx.delivery;
      if (!d) return;
      const resolve = this.pending.get(d);
      if (!resolve) return;
      this.pending.delete(d);
      resolve(outcome);
    };
    sender.on("accepted", settle("accepted"));
    sender.on("rejected", settle("rejected"));
    sender.on("released", settle("released"));
    sender.on("modified", settle("modified"));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(msg: AmqpMessageOut): Promise<Outcome> {
    if (this.isClosed) return Promise.resolve("closed");
    return new Promise<Outcome>((resolve) => {
      this.queue.push({ msg, resolve });
      this.flush();
    });
  }

  /** Fire and forget (replies, notifications): still waits for credit, ignores the settlement. */
  post(msg: AmqpMessageOut): void {
    void this.send(msg);
  }

  private flush(): void {
    while (!this.isClosed && this.queue.length > 0 && this.sender.sendable()) {
      const { msg, resolve } = this.queue.shift()!;
      const delivery = this.sender.send(msg as never);
      if (delivery.settled) resolve("accepted");
      else this.pending.set(delivery, resolve);
    }
  }

  /** The link or its connection is gone: every waiting and unsettled send resolves "closed". */
  markClosed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const { resolve } of this.queue.splice(0)) resolve("closed");
    for (const resolve of this.pending.values()) resolve("closed");
    this.pending.clear();
  }

  /** Detach with an error (token expired, identity revoked) or without (shutting down). */
  close(error?: { condition: string; description: string }): void {
    this.markClosed();
    try {
      if (this.sender.is_open()) this.sender.close(error ? { condition: error.condition, description: error.description } : undefined);
    } catch {
      // the connection is already down: nothing left to detach
    }
  }
}
