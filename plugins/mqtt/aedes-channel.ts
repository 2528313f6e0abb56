import type { AedesPublishPacket, Client, PublishPacket } from "aedes";
import type { OutboundChannel } from "./link.js";

interface Pending {
  resolve(): void;
  reject(err: Error): void;
}

let channels = 0;

/**
 * Publishes to one aedes client and tells when the device acknowledged. aedes's client.publish calls back
 * when the packet is written, not when the PUBACK arrives, and picks message ids itself; so each packet
 * carries this channel's own `brokerId` tag and counter, the broker's authorizeForward hook hands it to
 * `forward()` (which picks the message id), and the PUBACK comes back through `puback()`.
 * Replies go to this client only, never through broker.publish (spikes.md §2).
 */
export class AedesChannel implements OutboundChannel {
  /** Unique per connection: aedes dedupes forwarded packets per brokerId by an increasing counter. */
  readonly tag = `strata-mqtt-${++channels}`;
  private counter = 0;
  private nextMessageId = 1;
  /** Published, not yet through authorizeForward, by counter. */
  private readonly waiting = new Map<number, Pending & { qos: 0 | 1 }>();
  /** QoS 1 written, awaiting PUBACK, by message id. */
  private readonly inflight = new Map<number, Pending>();
  private gone: Error | undefined;

  constructor(private readonly client: Client) {}

  publish(topic: string, payload: Buffer, qos: 0 | 1): Promise<void> {
    if (this.gone) return Promise.reject(this.gone);
    return new Promise<void>((resolve, reject) => {
      const counter = ++this.counter;
      this.waiting.set(counter, { resolve, reject, qos });
      const packet = { cmd: "publish", topic, payload, qos, retain: false, dup: false, brokerId: this.tag, brokerCounter: counter };
      this.client.publish(packet as unknown as PublishPacket, (err?: Error) => {
        const pending = this.waiting.get(counter);
        // QoS 1 left `waiting` in forward() and settles on its PUBACK; what is still here is QoS 0 (done once
        // written) or a packet that was never forwarded (the connection went away).
        if (!pending) return;
        this.waiting.delete(counter);
        if (err) pending.reject(err);
        else if (pending.qos === 0) pending.resolve();
        else pending.reject(new Error("not delivered: the connection closed"));
      });
    });
  }

  /**
   * authorizeForward for this client: only this channel's own packets reach the device (nothing is routed
   * between devices through the broker); QoS 1 gets a message id not in flight.
   */
  forward(packet: AedesPublishPacket): AedesPublishPacket | null {
    if (packet.brokerId !== this.tag) return null;
    const pending = this.waiting.get(packet.brokerCounter);
    if (!pending) return null;
    if (packet.qos > 0) {
      this.waiting.delete(packet.brokerCounter);
      const id = this.allocateMessageId();
      if (id === undefined) {
        pending.reject(new Error("65535 messages in flight to this device"));
        return null;
      }
      (packet as { messageId?: number }).messageId = id;
      this.inflight.set(id, pending);
    }
    return packet;
  }

  /** The device's PUBACK for `messageId`. */
  puback(messageId: number): void {
    const pending = this.inflight.get(messageId);
    if (!pending) return;
    this.inflight.delete(messageId);
    pending.resolve();
  }

  close(): void {
    this.client.close();
  }

  /** The connection is gone: everything pending fails (the hub redelivers durable messages later). */
  closed(): void {
    if (this.gone) return;
    this.gone = new Error("not delivered: the connection closed");
    for (const p of this.waiting.values()) p.reject(this.gone);
    for (const p of this.inflight.values()) p.reject(this.gone);
    this.waiting.clear();
    this.inflight.clear();
  }

  private allocateMessageId(): number | undefined {
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.nextMessageId;
      this.nextMessageId = id >= 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
    return undefined;
  }
}
