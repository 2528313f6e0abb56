// One identity's sender link on the parent connection: its own session, target `/devices/{d}[/modules/{m}]/messages/events`,
// and the auth chain as a link property. Messages of one identity go in order on this one link.
import type { Connection, Delivery, EventContext, Message as RheaMessage, Sender, Session } from "rhea";
import type { IdentityId } from "../message.js";
import { BATCH_FORMAT } from "./batch.js";
import { AUTH_CHAIN_PROPERTY, eventsAddress, type AmqpMessage } from "./convert.js";
import { conditionOf, type Refusal } from "./refusals.js";

/** How the parent settled one message, or that the link went away first. */
export type Settlement =
  | { kind: "accepted" }
  | { kind: "released" }
  | { kind: "rejected"; refusal: Refusal }
  | { kind: "lost"; reason: string };

export class IdentitySender {
  readonly ready: Promise<void>;
  lastUsed: number;
  private readonly session: Session;
  private readonly sender: Sender;
  private readonly pending = new Map<Delivery, (s: Settlement) => void>();
  private opened = false;
  private closedWith: Settlement | undefined;
  private readonly closeListeners = new Set<() => void>();

  constructor(
    connection: Connection,
    readonly identity: IdentityId,
    /** The chain from `identity` up to this gateway; one element means this gateway itself (no chain). */
    authChain: readonly string[],
    now: number,
  ) {
    this.lastUsed = now;
    this.session = connection.create_session();
    this.session.begin();
    this.sender = this.session.attach_sender({
      target: { address: eventsAddress(identity) },
      ...(authChain.length > 1 ? { properties: { [AUTH_CHAIN_PROPERTY]: authChain.join(";") } } : {}),
      autosettle: true,
    });
    this.ready = new Promise<void>((resolve, reject) => {
      this.sender.once("sender_open", () => {
        this.opened = true;
        resolve();
      });
      this.onClose(() => reject(this.closedWith!));
    });
    this.ready.catch(() => undefined); // a refusal is read from `closedWith`; never an unhandled rejection
    this.sender.on("accepted", (ctx: EventContext) => this.settle(ctx, { kind: "accepted" }));
    this.sender.on("released", (ctx: EventContext) => this.settle(ctx, { kind: "released" }));
    this.sender.on("rejected", (ctx: EventContext) => this.settle(ctx, { kind: "rejected", refusal: conditionOf(ctx.delivery?.remote_state?.error) }));
    // A detach with an error is the parent refusing the link (scope, auth): every message on it gets that answer.
    const down = (ctx: EventContext) => {
      const error = ctx.sender?.error ?? ctx.session?.error;
      this.fail(error ? { kind: "rejected", refusal: conditionOf(error) } : { kind: "lost", reason: "the parent closed the link" });
    };
    this.sender.on("sender_error", down);
    this.sender.on("sender_close", down);
    this.session.on("session_error", down);
    this.session.on("session_close", down);
  }

  get isOpen(): boolean {
    return this.opened && this.closedWith === undefined;
  }

  get isClosed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Why the link closed (a refusal, or lost), once it has. */
  get closeReason(): Settlement | undefined {
    return this.closedWith;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Queues one message on the link (rhea holds it until the parent grants credit); resolves on settlement. */
  send(message: AmqpMessage, now: number): Promise<Settlement> {
    this.lastUsed = now;
    if (this.closedWith) return Promise.resolve(this.closedWith);
    return new Promise<Settlement>((resolve) => {
      const delivery = this.sender.send(message as RheaMessage);
      this.pending.set(delivery, resolve);
    });
  }

  /** Several messages in one transfer (an encoded batch, see batch.ts); the parent settles them together. */
  sendBatch(batch: { payload: Buffer; count: number }, now: number): Promise<Settlement> {
    this.lastUsed = now;
    if (this.closedWith) return Promise.resolve(this.closedWith);
    const { payload } = batch;
    return new Promise<Settlement>((resolve) => {
      const delivery = (this.sender.send as (m: unknown, tag?: unknown, format?: number) => Delivery)(payload, undefined, BATCH_FORMAT);
      this.pending.set(delivery, resolve);
    });
  }

  /** Ends every unsettled send with `reason` and closes the link (connection lost, idle, stopping). */
  fail(settlement: Settlement): void {
    if (this.closedWith) return;
    this.closedWith = settlement;
    for (const resolve of this.pending.values()) resolve(settlement);
    this.pending.clear();
    for (const listener of this.closeListeners) listener();
    this.closeListeners.clear();
  }

  /** Closes the link and its session politely (idle timeout); unsettled sends end as lost. */
  close(): void {
    this.fail({ kind: "lost", reason: "link closed" });
    try {
      this.sender.close();
      this.session.close();
    } catch {
      // the connection is already gone: nothing to close
    }
  }

  onClose(listener: () => void): void {
    if (this.closedWith) listener();
    else this.closeListeners.add(listener);
  }

  private settle(ctx: EventContext, settlement: Settlement): void {
    const delivery = ctx.delivery;
    if (!delivery) return;
    const resolve = this.pending.get(delivery);
    if (!resolve) return;
    this.pending.delete(delivery);
    resolve(settlement);
  }
}
