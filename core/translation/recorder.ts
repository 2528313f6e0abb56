// A northbound sink that keeps what reaches it in memory: for the translation kit and plugin tests, which
// check data arrival at the root by identity and property.
import { sinkQueue } from "../hub/queues.js";
import type { DeliveryOutcome, EndpointConsumer, Hub } from "../hub/types.js";
import type { Message } from "../message.js";
import type { Lease } from "../store/types.js";

export class TelemetryRecorder implements EndpointConsumer {
  readonly messages: Message[] = [];
  private waiters: Array<{ match: (m: Message) => boolean; resolve: (m: Message) => void }> = [];
  private unconsume: (() => void) | undefined;

  /** Registers `name` as a sink of the root's `$upstream` and drains it into `messages`. */
  static attach(hub: Hub, name = "recorder"): TelemetryRecorder {
    const r = new TelemetryRecorder();
    hub.addSink(name);
    r.unconsume = hub.consume(sinkQueue(name), r);
    return r;
  }

  async deliver(leases: readonly Lease[]): Promise<DeliveryOutcome[]> {
    for (const l of leases) {
      this.messages.push(l.message);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(l.message)) return true;
        w.resolve(l.message);
        return false;
      });
    }
    return leases.map(() => "delivered" as const);
  }

  /** Resolves with the first message (already recorded or still to come) that `match` accepts. */
  waitFor(match: (m: Message) => boolean, signal?: AbortSignal): Promise<Message> {
    const found = this.messages.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { match, resolve };
      this.waiters.push(w);
      signal?.addEventListener("abort", () => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(signal.reason);
      }, { once: true });
    });
  }

  stop(): void {
    this.unconsume?.();
    this.unconsume = undefined;
  }
}
