import { once } from "node:events";
import rhea, { type Connection, type EventContext, type Receiver, type Sender } from "rhea";
import type { TestGateway } from "../../support/gateway.js";

/** A bare rhea client (the shape of core's upstream link): one TLS connection, links opened by hand. */
export class RheaClient {
  private cbsSender: Sender | undefined;
  private cbsReceiver: Receiver | undefined;
  private nextId = 1;

  private constructor(readonly connection: Connection) {}

  static async connect(gw: TestGateway): Promise<RheaClient> {
    const container = rhea.create_container({ id: `test-${process.pid}-${Math.random().toString(16).slice(2)}` });
    const connection = container.connect({
      host: gw.address, port: gw.port("amqp"), transport: "tls", ca: gw.caPem, servername: "localhost", reconnect: false,
    } as never);
    container.on("error", () => undefined);
    await once(connection as never, "connection_open");
    return new RheaClient(connection);
  }

  /** put-token on $cbs; resolves with the reply's status-code. */
  async putToken(token: string, name = ""): Promise<number> {
    if (!this.cbsSender) {
      this.cbsReceiver = this.connection.open_receiver({ source: { address: "$cbs" } });
      this.cbsSender = this.connection.open_sender({ target: { address: "$cbs" } });
      await Promise.all([once(this.cbsReceiver as never, "receiver_open"), once(this.cbsSender as never, "sendable")]);
    }
    const id = `cbs-${this.nextId++}`;
    const reply = new Promise<number>((resolve) => {
      const onMessage = (ctx: EventContext): void => {
        if (ctx.message?.correlation_id !== id) return;
        this.cbsReceiver!.removeListener("message", onMessage);
        resolve(Number(ctx.message.application_properties?.["status-code"]));
      };
      this.cbsReceiver!.on("message", onMessage);
    });
    this.cbsSender.send({
      message_id: id, to: "$cbs", reply_to: "cbs",
      application_properties: { operation: "put-token", type: "servicebus.windows.net:sastoken", name },
      body: token,
    });
    return reply;
  }

  /** Opens a sender; resolves once the peer attached it (or rejects with the detach error). */
  async sender(address: string, properties?: Record<string, unknown>): Promise<Sender> {
    const s = this.connection.open_sender({ target: { address }, ...(properties ? { properties } : {}) });
    return attached(s, "sender");
  }

  async receiver(address: string, properties?: Record<string, unknown>): Promise<Receiver> {
    const r = this.connection.open_receiver({ source: { address }, ...(properties ? { properties } : {}), autoaccept: false } as never);
    return attached(r, "receiver");
  }

  close(): Promise<void> {
    if (!this.connection.is_open()) return Promise.resolve();
    const closed = once(this.connection as never, "connection_close").then(() => undefined);
    this.connection.close();
    return Promise.race([closed, new Promise<void>((r) => setTimeout(r, 1000).unref())]);
  }
}

/**
 * Attach result: the link once the peer attached it and (for a sender) granted credit, or the peer's error when
 * it refused. A refusal is an attach followed by a detach with an error, and a refused sender never gets credit.
 */
function attached<L extends Sender | Receiver>(link: L, role: "sender" | "receiver"): Promise<L> {
  return new Promise<L>((resolve, reject) => {
    link.once((role === "sender" ? "sendable" : "receiver_open") as never, () => resolve(link));
    link.once(`${role}_error` as never, () => reject(linkError(link)));
  });
}

export function linkError(link: Sender | Receiver): Error & { condition?: string } {
  const e = link.error as { condition?: string; description?: string } | undefined;
  const err = new Error(e?.description ?? "link closed") as Error & { condition?: string };
  err.condition = e?.condition;
  return err;
}

/** Sends one message and resolves with the peer's outcome (and the rejection's condition). */
export function sendAndSettle(sender: Sender, msg: unknown): Promise<{ outcome: string; condition?: string }> {
  return new Promise((resolve) => {
    const go = (): void => {
      const d = sender.send(msg as never);
      const onSettle = (name: string) => (ctx: EventContext): void => {
        if (ctx.delivery !== d) return;
        const state = (ctx.delivery as unknown as { remote_state?: { error?: { condition?: string } } }).remote_state;
        resolve({ outcome: name, ...(state?.error?.condition ? { condition: state.error.condition } : {}) });
      };
      sender.on("accepted", onSettle("accepted"));
      sender.on("rejected", onSettle("rejected"));
      sender.on("released", onSettle("released"));
    };
    if (sender.sendable()) go();
    else sender.once("sendable", go);
  });
}
