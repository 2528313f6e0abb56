// A scripted parent for the upstream link's tests: rhea as a server (TLS, and AMQP over WebSocket on an
// HTTPS server), CBS put-token checked against one key, per-link scripted settlements. It plays the
// contract plugins/amqp implements (shared/briefs I.md §3) without a hub behind it.
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Server as TlsServer } from "node:tls";
import { create_container, type Connection, type Delivery, type EventContext, type Receiver, type Sender } from "rhea";
import { WebSocketServer } from "ws";
import { sasSignature, tryParseSasToken, decodeSig } from "../../../core/identity/sas.js";
import { fromAmqpMessage, type AmqpMessage } from "../../../core/upstream/convert.js";
import type { Message } from "../../../core/message.js";

export interface Received {
  address: string;
  authChain: string | undefined;
  message: Message;
  delivery: Delivery;
}

/** What the parent does with one message: settle it at once, or hold it (undefined) for the test to settle. */
export type Decision = "accept" | "release" | { reject: string; description?: string } | undefined;

export interface FakeParentOptions {
  cert: string;
  key: string;
  hub: string;
  /** The child's id and key the parent checks put-tokens against. */
  child: { id: string; key: string };
  /** Refuse every put-token (status 401). */
  refuseToken?: boolean;
  /** A link attach for this target identity is refused with this condition. */
  refuseLink?: (identity: string, authChain: string | undefined) => string | undefined;
  decide?: (r: Received) => Decision;
  /** Serve AMQP over TLS (default true) and/or WebSocket. */
  amqps?: boolean;
  wss?: boolean;
  /** Listen on these ports (restart tests); 0 = any. */
  ports?: { amqp?: number; https?: number };
  credit?: number;
}

export class FakeParent {
  readonly received: Received[] = [];
  readonly tokens: { name: string; token: string }[] = [];
  readonly connections = new Set<Connection>();
  amqpPort = 0;
  httpsPort = 0;
  private tls?: TlsServer;
  private https?: HttpsServer;
  private wsServer?: WebSocketServer;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly opts: FakeParentOptions) {}

  static async start(opts: FakeParentOptions): Promise<FakeParent> {
    const p = new FakeParent(opts);
    await p.listen();
    return p;
  }

  private async listen(): Promise<void> {
    const container = create_container({ id: "fake-parent" });
    container.on("error", () => undefined);
    const serverOpts = { autoaccept: false, credit_window: 0 };
    const cbsSenders = new Map<Connection, Sender>();

    container.on("connection_open", (ctx: EventContext) => this.connections.add(ctx.connection));
    container.on("disconnected", (ctx: EventContext) => this.connections.delete(ctx.connection));
    container.on("sender_open", (ctx: EventContext) => {
      if (ctx.sender?.source?.address === "$cbs") cbsSenders.set(ctx.connection, ctx.sender);
    });
    container.on("receiver_open", (ctx: EventContext) => {
      const receiver = ctx.receiver as Receiver;
      const address = receiver.target?.address ?? "";
      if (address !== "$cbs") {
        const chain = (receiver as unknown as { properties?: Record<string, unknown> }).properties?.["com.microsoft:auth-chain"];
        const identity = /^\/devices\/([^/]+)(?:\/modules\/([^/]+))?\/messages\/events$/.exec(address);
        const id = identity ? (identity[2] ? `${decodeURIComponent(identity[1]!)}/${decodeURIComponent(identity[2])}` : decodeURIComponent(identity[1]!)) : address;
        const refusal = this.opts.refuseLink?.(id, chain === undefined ? undefined : String(chain));
        if (refusal) {
          receiver.close({ condition: refusal, description: `refused ${id}` });
          return;
        }
      }
      receiver.add_credit(this.opts.credit ?? 50);
    });
    container.on("message", (ctx: EventContext) => {
      const receiver = ctx.receiver as Receiver;
      const address = receiver.target?.address ?? "";
      const delivery = ctx.delivery!;
      if (address === "$cbs") {
        const msg = ctx.message!;
        const props = msg.application_properties as Record<string, string>;
        const token = String(msg.body);
        this.tokens.push({ name: props.name!, token });
        delivery.accept();
        receiver.add_credit(1);
        const ok = !this.opts.refuseToken && this.tokenValid(token);
        cbsSenders.get(ctx.connection)?.send(<never>{
          correlation_id: msg.message_id,
          application_properties: { "status-code": ok ? 200 : 401, "status-description": ok ? "OK" : "Unauthorized" },
        });
        return;
      }
      const message = fromAmqpMessage(ctx.message as AmqpMessage);
      const chain = (receiver as unknown as { properties?: Record<string, unknown> }).properties?.["com.microsoft:auth-chain"];
      const r: Received = { address, authChain: chain === undefined ? undefined : String(chain), message: message!, delivery };
      this.received.push(r);
      const decision = this.opts.decide ? this.opts.decide(r) : "accept";
      if (decision !== undefined) settle(r, decision);
      for (const w of [...this.waiters]) w();
    });

    if (this.opts.amqps ?? true) {
      this.tls = container.listen({ ...serverOpts, port: this.opts.ports?.amqp ?? 0, host: "127.0.0.1", transport: "tls", key: this.opts.key, cert: this.opts.cert });
      await new Promise<void>((resolve, reject) => {
        this.tls!.once("listening", () => resolve());
        this.tls!.once("error", reject);
      });
      this.amqpPort = (this.tls.address() as AddressInfo).port;
    }
    if (this.opts.wss) {
      this.https = createHttpsServer({ key: this.opts.key, cert: this.opts.cert });
      this.wsServer = new WebSocketServer({
        noServer: true,
        handleProtocols: (protocols) => (protocols.has("AMQPWSB10") ? "AMQPWSB10" : false),
      });
      this.https.on("upgrade", (req, socket, head) => {
        if (req.url !== "/$iothub/websocket") return socket.destroy();
        this.wsServer!.handleUpgrade(req, socket, head, (ws) => container.websocket_accept(ws as never, serverOpts as never));
      });
      await new Promise<void>((resolve, reject) => {
        this.https!.once("error", reject);
        this.https!.listen(this.opts.ports?.https ?? 0, "127.0.0.1", () => resolve());
      });
      this.httpsPort = (this.https.address() as AddressInfo).port;
    }
  }

  private tokenValid(token: string): boolean {
    const parsed = tryParseSasToken(token);
    if (!parsed.ok) return false;
    const sig = decodeSig(parsed.token.sig);
    const expected = sasSignature(parsed.token.sr, parsed.token.se, this.opts.child.key);
    return decodeURIComponent(parsed.token.sr) === `${this.opts.hub}/devices/${this.opts.child.id}` && !!sig && sig.equals(expected);
  }

  /** Resolves once `n` messages (in total) have arrived. */
  waitFor(n: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const check = () => {
        if (this.received.length >= n) {
          this.waiters.delete(check);
          resolve();
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Cuts every connection at the socket (the parent died); rhea's own timers for them are cleared too. */
  dropConnections(): void {
    for (const c of [...this.connections]) {
      const conn = c as unknown as { socket?: unknown; abort_socket?: (socket: unknown) => void };
      if (conn.socket && conn.abort_socket) conn.abort_socket(conn.socket);
      this.connections.delete(c);
    }
  }

  async stop(): Promise<void> {
    this.dropConnections();
    this.wsServer?.clients.forEach((c) => c.terminate());
    this.wsServer?.close();
    await Promise.all([
      this.tls ? new Promise<void>((r) => this.tls!.close(() => r())) : undefined,
      this.https ? new Promise<void>((r) => { this.https!.closeAllConnections(); this.https!.close(() => r()); }) : undefined,
    ]);
  }
}

/**
 * rhea 3.0.5 merges a receiver's pending dispositions into ranges without comparing the first two outcomes
 * (session.js write_dispositions: `first !== last && …`), so an accept and a reject settled in the same tick
 * go out as one "accepted 1..2". Outcomes other than accept are therefore settled in a tick of their own.
 */
let chain: Promise<void> = Promise.resolve();
export function settle(r: Received, decision: Exclude<Decision, undefined>): void {
  if (decision === "accept") return settleNow(r, decision);
  chain = chain.then(() => new Promise<void>((resolve) => setImmediate(() => {
    settleNow(r, decision);
    setImmediate(resolve);
  })));
}

function settleNow(r: Received, decision: Exclude<Decision, undefined>): void {
  if (decision === "accept") r.delivery.accept();
  else if (decision === "release") r.delivery.release();
  else r.delivery.reject({ condition: decision.reject, description: decision.description ?? "refused" });
  (r.delivery as unknown as { link: Receiver }).link.add_credit(1);
}
