import { setTimeout as delay } from "node:timers/promises";
import rhea, { type Connection, type Container, type Delivery, type EventContext, type Receiver, type Sender } from "rhea";
import {
  BATCH_CAPABILITY, BATCH_FORMAT, MIXED_BATCH_CAPABILITY, RECORD_BATCH_CAPABILITY, decodeBatch, identityId, isStrataError, patchRheaBuffers, patchRheaDispositions,
  type AuthResult, type Hub, type Identities, type InboundMessage, type Logger, type Message, type Principal,
} from "../../core/index.js";
import { AUTH_CHAIN_PROPERTY, parseAuthChain, parseLinkAddress, type DeviceAddress } from "./addresses.js";
import { parsePutToken, putTokenReply, statusForFailure, verifyPutToken } from "./cbs.js";
import type { AmqpConfig } from "./config.js";
import {
  bodyBytes, echoId, encodedSize, idToString, inboundFromAmqp, jsonBody, parseJsonBody, strataMessageFromAmqp,
  type AmqpMessageIn,
} from "./convert.js";
import { AmqpDeviceLink, METHOD_STATUS_PROPERTY } from "./link.js";
import { OutboundLink } from "./outbound.js";
import { PlainMechanism } from "./sasl.js";
import { ServiceSide } from "./service.js";

/** What a transport tells the head about one accepted socket (rhea keeps it in connection.options). */
export interface PeerInfo {
  transport: "tls" | "websocket" | "tcp";
  remoteAddress?: string;
  /** The TLS client certificate chain, leaf first, DER; empty without one. */
  peerChain: Buffer[];
  /** The TLS handshake verified peerChain against the trust bundle (node drops the client's intermediates). */
  peerVerified?: boolean;
}

interface AuthEntry {
  principal: Principal;
  timer?: NodeJS.Timeout;
}

/** Key of the service principal among a connection's authenticated principals. */
const SERVICE_KEY = "$service";

/** Per connection: who authenticated on it (CBS, PLAIN, certificate) and each identity's links. */
class ConnState {
  readonly principals = new Map<string, AuthEntry>();
  readonly links = new Map<string, AmqpDeviceLink>();
  readonly cbs: OutboundLink[] = [];
  /** Service-side links, closed when the service token expires. */
  readonly serviceLinks = new Set<Sender | Receiver>();
  closed = false;
  constructor(readonly connection: Connection, readonly peer: PeerInfo) {}
}

export interface AmqpHeadOptions {
  hub: Hub;
  identities: Identities;
  config: AmqpConfig;
  log: Logger;
  /** The root serves the service side (C2D send, feedback). */
  isRoot: boolean;
}

const UNAUTHORIZED = "amqp:unauthorized-access";

/**
 * The AMQP head: one rhea container for every transport (TLS and WebSocket), IoT Hub's links on top. Every
 * receiving link runs with manual credit: a message is accepted, and one more credit granted, only once the
 * hub has it durably (spikes.md §3).
 */
export class AmqpHead {
  readonly container: Container;
  private readonly states = new Map<Connection, ConnState>();
  private readonly service: ServiceSide | undefined;
  private closing = false;
  /**
   * A version 3 batch's sources already checked for an actor (see bySource), per actor principal — a renewed
   * token is a new principal — and all dropped on any identity change: 20 leaves' chains were walked twice per
   * transfer, ~2 µs per message at a forwarding hop.
   */
  private checkedSources = new WeakMap<Principal, Map<string, Principal>>();
  private readonly unsubscribeIdentities: () => void;

  constructor(private readonly opts: AmqpHeadOptions) {
    patchRheaDispositions(); // accept-after-write must never reach a client as a merged range (see core)
    patchRheaBuffers();
    this.container = rhea.create_container({ id: `strata-amqp-${process.pid}`, autoaccept: false, credit_window: 0 } as never);
    const mechs = this.container.sasl_server_mechanisms as unknown as Record<string, unknown>;
    mechs["ANONYMOUS"] = () => ({ outcome: true, username: "anonymous", start() {} });
    mechs["PLAIN"] = () => new PlainMechanism(opts.identities);
    // EXTERNAL: the identity is proven by the TLS client certificate when a link attaches (Identities decides).
    mechs["EXTERNAL"] = () => ({ outcome: true, username: "external", start() {} });
    this.service = opts.isRoot ? new ServiceSide(opts.hub, opts.identities, opts.config, opts.log) : undefined;
    this.unsubscribeIdentities = opts.identities.on(() => { this.checkedSources = new WeakMap(); });
    this.wire();
  }

  start(): void {
    this.service?.start();
  }

  /** Connection options for one accepted socket (rhea reads link defaults from them). */
  connectionOptions(peer: PeerInfo): Record<string, unknown> {
    // tcp_no_delay: a disposition or credit must not wait for the peer's delayed ACK (Nagle), see core/upstream/dial.ts.
    return {
      autoaccept: false, credit_window: 0, tcp_no_delay: true, strata_peer: peer, container_id: this.container.id,
      offered_capabilities: [BATCH_CAPABILITY, RECORD_BATCH_CAPABILITY, MIXED_BATCH_CAPABILITY],
    };
  }

  /** Takes a socket a transport accepted (TLS stream or rhea-wrapped WebSocket). */
  accept(socket: unknown, peer: PeerInfo): void {
    if (this.closing) {
      (socket as { destroy?: () => void; end?: () => void }).destroy?.();
      return;
    }
    this.container.create_connection(this.connectionOptions(peer) as never).accept(socket as never);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.unsubscribeIdentities();
    this.service?.stop();
    const closing: Array<Promise<void>> = [];
    for (const state of [...this.states.values()]) {
      closing.push(new Promise<void>((resolve) => {
        const c = state.connection;
        const done = (): void => resolve();
        c.once("disconnected" as never, done);
        c.once("connection_close" as never, done);
        setTimeout(done, 500).unref();
        this.cleanup(state, "gateway shutting down");
        try {
          c.close({ condition: "amqp:connection:forced", description: "gateway shutting down" });
        } catch {
          done(); // already down
        }
      }).then(() => {
        const socket = (state.connection as unknown as { socket?: { destroy?: () => void } }).socket;
        socket?.destroy?.();
      }));
    }
    await Promise.all(closing);
    this.states.clear();
  }

  get connectionCount(): number {
    return this.states.size;
  }

  // ---- wiring ---------------------------------------------------------------------------------------

  private wire(): void {
    const c = this.container;
    c.on("connection_open", (ctx: EventContext) => this.onConnectionOpen(ctx.connection));
    c.on("sender_open", (ctx: EventContext) => this.safely(ctx.connection, () => this.onSenderOpen(ctx.connection, ctx.sender!)));
    c.on("receiver_open", (ctx: EventContext) => this.safely(ctx.connection, () => this.onReceiverOpen(ctx.connection, ctx.receiver!)));
    c.on("connection_close", (ctx: EventContext) => this.onGone(ctx.connection, "connection closed by peer"));
    c.on("disconnected", (ctx: EventContext) => this.onGone(ctx.connection, "disconnected"));
    // A malformed frame: rhea ends that one socket; only log it (an unhandled "error" would throw).
    c.on("protocol_error", (err: unknown) => this.opts.log.warn({ err }, "amqp protocol error; closing that connection"));
    c.on("error", (err: unknown) => this.opts.log.debug({ err }, "amqp error"));
    c.on("connection_error", (ctx: EventContext) => this.opts.log.debug({ err: ctx.connection.error }, "amqp connection error"));
    c.on("session_error", (ctx: EventContext) => this.opts.log.debug({ err: ctx.session?.error }, "amqp session error"));
  }

  private safely(connection: Connection, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.log.error({ err }, "amqp link handling failed; closing connection");
      try {
        connection.close({ condition: "amqp:internal-error", description: "internal error; see the gateway log" });
      } catch (closeErr) {
        this.opts.log.debug({ err: closeErr }, "amqp close after failure failed");
      }
    }
  }

  private state(connection: Connection): ConnState {
    let state = this.states.get(connection);
    if (!state) {
      const peer = (connection.options as { strata_peer?: PeerInfo }).strata_peer ?? { transport: "tcp", peerChain: [] };
      state = new ConnState(connection, peer);
      this.states.set(connection, state);
    }
    return state;
  }

  private onConnectionOpen(connection: Connection): void {
    const state = this.state(connection);
    // SASL PLAIN: the mechanism kept its verdict.
    const sasl = (connection as unknown as { sasl_transport?: { selected?: { mechanism?: unknown }; mechanism?: unknown } }).sasl_transport;
    const mech = sasl?.selected?.mechanism ?? sasl?.mechanism;
    if (mech instanceof PlainMechanism && mech.result?.ok) this.remember(state, mech.result.principal);
    this.opts.log.debug({ transport: state.peer.transport, remoteAddress: state.peer.remoteAddress }, "amqp connection open");
  }

  private onGone(connection: Connection, reason: string): void {
    const state = this.states.get(connection);
    if (!state) return;
    this.cleanup(state, reason);
    this.states.delete(connection);
  }

  private cleanup(state: ConnState, reason: string): void {
    if (state.closed) return;
    state.closed = true;
    for (const entry of state.principals.values()) if (entry.timer) clearTimeout(entry.timer);
    state.principals.clear();
    for (const link of state.links.values()) link.onClosed(reason);
    state.links.clear();
    for (const cbs of state.cbs) cbs.markClosed();
  }

  // ---- authentication ---------------------------------------------------------------------------------

  /** Keeps an authenticated principal on the connection until its credential expires (or is renewed). */
  private remember(state: ConnState, principal: Principal): void {
    const key = principal.policy !== undefined ? SERVICE_KEY : principal.id;
    const old = state.principals.get(key);
    if (old?.timer) clearTimeout(old.timer);
    const entry: AuthEntry = { principal };
    if (principal.expiresAt !== undefined) {
      const ms = Math.min(Math.max(principal.expiresAt * 1000 - Date.now(), 0), 2 ** 31 - 1);
      entry.timer = setTimeout(() => this.expire(state, key), ms);
      entry.timer.unref();
    }
    state.principals.set(key, entry);
    // A renewed token keeps the links; they now run on the new expiry.
    const link = state.links.get(principal.id);
    if (link && !link.closed && principal.policy === undefined && link.principal.method !== "on-behalf-of") link.principal = principal;
  }

  /** A token expired without renewal: that identity's links (and those it acted for) end. */
  private expire(state: ConnState, key: string): void {
    state.principals.delete(key);
    if (state.closed) return;
    const description = `the token for ${key} expired; renew it with a put-token on $cbs before it expires`;
    this.opts.log.info({ identity: key }, "amqp credential expired");
    for (const link of [...state.links.values()]) {
      if (link.principal.id === key || link.principal.actor === key) this.detachIdentity(state, link, UNAUTHORIZED, description);
    }
    if (key === SERVICE_KEY) {
      for (const l of state.serviceLinks) if (l.is_open()) l.close({ condition: UNAUTHORIZED, description });
      state.serviceLinks.clear();
    }
  }

  private principalFor(state: ConnState, id: string): Principal | undefined {
    const entry = state.principals.get(id);
    if (!entry) return undefined;
    if (entry.principal.expiresAt !== undefined && entry.principal.expiresAt * 1000 <= Date.now()) return undefined;
    return entry.principal;
  }

  /** Who may use a device address on this connection: its own token/certificate, or an actor with a chain. */
  private authorize(state: ConnState, address: DeviceAddress, linkProperties: unknown): AuthResult {
    const target = identityId(address.deviceId, address.moduleId);
    const props = (linkProperties ?? {}) as Record<string, unknown>;
    const chain = parseAuthChain(props[AUTH_CHAIN_PROPERTY]);
    const ids = this.opts.identities;
    if (chain && chain.length > 1) {
      const actorId = chain[chain.length - 1]!;
      const actor = this.principalFor(state, actorId);
      if (!actor) {
        return { ok: false, reason: "not-in-scope", detail: `auth chain ends in ${actorId}, which has not authenticated on this connection (put its token on $cbs first)` };
      }
      return ids.verifyOnBehalfOf(actor, target, chain);
    }
    const known = this.principalFor(state, target);
    if (known) return { ok: true, principal: known };
    if (state.peer.peerChain.length > 0) {
      const result = ids.verifyCertificate(target, state.peer.peerChain, undefined, { tlsVerified: state.peer.peerVerified === true });
      if (result.ok) this.remember(state, result.principal);
      return result;
    }
    return { ok: false, reason: "wrong-identity", detail: `${target} has not authenticated on this connection: put a token for it on $cbs (or use SASL PLAIN / a client certificate)` };
  }

  private refuse(link: Sender | Receiver, condition: string, description: string): void {
    this.opts.log.info({ address: addressOf(link), condition, description }, "amqp link refused");
    link.close({ condition, description });
  }

  // ---- link attach ----------------------------------------------------------------------------------

  private onSenderOpen(connection: Connection, sender: Sender): void {
    const state = this.state(connection);
    const raw = sender.source?.address as string | undefined;
    echoTerminus(sender);
    const address = parseLinkAddress(raw);
    if (!address) return this.refuse(sender, "amqp:not-found", `no such node ${JSON.stringify(raw)}`);
    switch (address.kind) {
      case "cbs": {
        const out = new OutboundLink(sender);
        state.cbs.push(out);
        sender.on("sender_close", () => out.markClosed());
        return;
      }
      case "service-feedback": {
        if (!this.service) return this.refuse(sender, "amqp:not-found", "only the root gateway serves C2D feedback");
        if (!this.principalFor(state, SERVICE_KEY)) return this.refuse(sender, UNAUTHORIZED, "put an iothubowner (ServiceConnect) token on $cbs first");
        const out = new OutboundLink(sender);
        const service = this.service;
        service.addFeedbackLink(out);
        state.serviceLinks.add(sender);
        sender.on("sender_close", () => {
          out.markClosed();
          service.removeFeedbackLink(out);
        });
        return;
      }
      case "service-c2d":
        return this.refuse(sender, "amqp:not-allowed", "/messages/devicebound takes messages from the service; attach a sender");
      default:
        return this.deviceSender(state, sender, address);
    }
  }

  private onReceiverOpen(connection: Connection, receiver: Receiver): void {
    const state = this.state(connection);
    const raw = receiver.target?.address as string | undefined;
    echoTerminus(receiver);
    const address = parseLinkAddress(raw);
    if (!address) return this.refuse(receiver, "amqp:not-found", `no such node ${JSON.stringify(raw)}`);
    switch (address.kind) {
      case "cbs":
        receiver.on("message", (ctx: EventContext) => this.onPutToken(state, receiver, ctx.delivery!, ctx.message as AmqpMessageIn));
        receiver.add_credit(this.opts.config.link_credit);
        return;
      case "service-c2d": {
        const service = this.service;
        if (!service) return this.refuse(receiver, "amqp:not-found", "only the root gateway serves C2D sends");
        if (!this.principalFor(state, SERVICE_KEY)) return this.refuse(receiver, UNAUTHORIZED, "put an iothubowner (ServiceConnect) token on $cbs first");
        state.serviceLinks.add(receiver);
        receiver.on("message", (ctx: EventContext) => {
          if (!this.principalFor(state, SERVICE_KEY)) {
            ctx.delivery!.reject({ condition: UNAUTHORIZED, description: "the service token expired" });
            return;
          }
          void service.onC2D(receiver, ctx.delivery!, ctx.message as AmqpMessageIn);
        });
        receiver.add_credit(this.opts.config.link_credit);
        return;
      }
      case "service-feedback":
        return this.refuse(receiver, "amqp:not-allowed", "/messages/serviceBound/feedback sends to the service; attach a receiver");
      default:
        return this.deviceReceiver(state, receiver, address);
    }
  }

  /** The DeviceLink of the principal on this connection, attached to the hub on first use. */
  private deviceLink(state: ConnState, principal: Principal): AmqpDeviceLink {
    const existing = state.links.get(principal.id);
    if (existing && !existing.closed) return existing;
    const link: AmqpDeviceLink = new AmqpDeviceLink(principal, this.opts.log, (condition, description) => {
      this.detachIdentity(state, link, condition, description);
    });
    link.attachment = this.opts.hub.attach(link); // may throw STRATA_HUB_MAX_CLIENTS
    state.links.set(principal.id, link);
    return link;
  }

  /**
   * A child gateway's upstream connection authenticates as the gateway and may carry no link of its own
   * identity for hours (it acts for its devices): attach it on its token, so the hub — and `strata child
   * list` — see the child connected while its connection lives. It subscribes to nothing.
   */
  private attachChildGateway(state: ConnState, principal: Principal): void {
    if (principal.policy !== undefined || principal.moduleId !== undefined || !this.opts.identities.get(principal.id)?.edge) return;
    try {
      this.deviceLink(state, principal);
    } catch (err) {
      this.opts.log.warn({ err, identity: principal.id }, "child gateway authenticated but not attached to the hub");
    }
  }

  /** Detaches every link of one identity; the connection (and other identities on it) stays up. */
  private detachIdentity(state: ConnState, link: AmqpDeviceLink, condition: string, description: string): void {
    link.onClosed(description);
    if (state.links.get(link.principal.id) === link) state.links.delete(link.principal.id);
    const error = { condition, description };
    for (const out of [link.c2d, link.inputs, link.twin, link.methods]) out?.close(error);
    for (const r of link.receivers) {
      try {
        if (r.is_open()) r.close(error);
      } catch (err) {
        this.opts.log.debug({ err }, "amqp receiver already gone");
      }
    }
    link.receivers.clear();
  }

  private linkFor(state: ConnState, link: Sender | Receiver, address: DeviceAddress): AmqpDeviceLink | undefined {
    const auth = this.authorize(state, address, link.properties);
    if (!auth.ok) {
      this.refuse(link, UNAUTHORIZED, `${auth.reason}: ${auth.detail}`);
      return undefined;
    }
    try {
      return this.deviceLink(state, auth.principal);
    } catch (err) {
      if (isStrataError(err, "STRATA_HUB_MAX_CLIENTS")) {
        this.refuse(link, "amqp:resource-limit-exceeded", (err as Error).message);
        return undefined;
      }
      throw err;
    }
  }

  private deviceSender(state: ConnState, sender: Sender, address: DeviceAddress): void {
    if (address.kind === "events" && address.moduleId === undefined) {
      return this.refuse(sender, "amqp:not-allowed", "a device sends on /messages/events; C2D is received on /devices/{id}/messages/devicebound");
    }
    if (address.kind === "c2d" && address.moduleId !== undefined) {
      return this.refuse(sender, "amqp:not-allowed", "modules receive inputs on /devices/{d}/modules/{m}/messages/events, not C2D");
    }
    const dl = this.linkFor(state, sender, address);
    if (!dl) return;
    const out = new OutboundLink(sender);
    const slot = address.kind === "events" ? "inputs" : address.kind;
    dl[slot]?.markClosed();
    dl[slot] = out;
    sender.on("sender_close", () => {
      out.markClosed();
      if (slot === "twin") dl.desiredSubscribed = false;
      this.releaseIfEmpty(state, dl);
    });
    this.opts.log.debug({ identity: dl.principal.id, kind: slot }, "amqp link attached");
    // Desired patches need the PUT on the twin link; everything else is subscribed by the attach itself.
    dl.changed();
  }

  private deviceReceiver(state: ConnState, receiver: Receiver, address: DeviceAddress): void {
    if (address.kind === "c2d") return this.refuse(receiver, "amqp:not-allowed", "C2D is sent by the hub; attach a receiver on this address");
    const dl = this.linkFor(state, receiver, address);
    if (!dl) return;
    dl.receivers.add(receiver);
    receiver.on("receiver_close", () => {
      dl.receivers.delete(receiver);
      this.releaseIfEmpty(state, dl);
    });
    receiver.on("message", (ctx: EventContext) => {
      const delivery = ctx.delivery!;
      const msg = ctx.message as AmqpMessageIn;
      if (dl.closed) {
        delivery.reject({ condition: UNAUTHORIZED, description: "this identity's links were closed" });
        return;
      }
      switch (address.kind) {
        case "events":
          if ((ctx as { format?: number }).format === BATCH_FORMAT) void this.onTelemetryBatch(dl, receiver, delivery, ctx.message as unknown as Buffer);
          else void this.onTelemetry(dl, receiver, delivery, msg);
          return;
        case "twin":
          void this.onTwinRequest(dl, receiver, delivery, msg);
          return;
        case "methods":
          this.onMethodResponse(dl, receiver, delivery, msg);
          return;
      }
    });
    const forwarding = address.kind === "events" && this.mayForward(dl.principal);
    receiver.add_credit(forwarding ? this.opts.config.gateway_link_credit : this.opts.config.link_credit);
  }

  private releaseIfEmpty(state: ConnState, dl: AmqpDeviceLink): void {
    if (!dl.empty()) return;
    dl.onClosed("all links detached");
    if (state.links.get(dl.principal.id) === dl) state.links.delete(dl.principal.id);
  }

  // ---- CBS ----------------------------------------------------------------------------------------------

  private onPutToken(state: ConnState, receiver: Receiver, delivery: Delivery, msg: AmqpMessageIn & { message_id?: unknown }): void {
    delivery.accept();
    receiver.add_credit(1);
    const parsed = parsePutToken(msg);
    let status: number;
    let description: string;
    if (!parsed.ok) {
      ({ status, description } = parsed);
    } else {
      const result = verifyPutToken(this.opts.identities, parsed.request);
      if (result.ok) {
        this.remember(state, result.principal);
        status = 200;
        description = "OK";
        this.opts.log.debug({ identity: result.principal.id }, "amqp cbs token accepted");
        this.attachChildGateway(state, result.principal);
      } else {
        ({ status, description } = statusForFailure(result));
        this.opts.log.info({ reason: result.reason, detail: result.detail }, "amqp cbs token refused");
      }
    }
    const reply = putTokenReply(msg.message_id, status, description);
    // Reply on the $cbs sender of the same session when there is one (each identity may have its own session).
    const session = (receiver as unknown as { session: unknown }).session;
    const out = state.cbs.find((c) => !c.closed && (c.sender as unknown as { session: unknown }).session === session)
      ?? state.cbs.find((c) => !c.closed);
    if (out) out.post(reply);
    else this.opts.log.warn({}, "amqp put-token without a $cbs receiver to reply to");
  }

  // ---- telemetry ----------------------------------------------------------------------------------------

  private async onTelemetry(dl: AmqpDeviceLink, receiver: Receiver, delivery: Delivery, msg: AmqpMessageIn): Promise<void> {
    const max = this.opts.config.max_message_bytes;
    const bodySize = bodyBytes(msg.body).length;
    // Re-encoding costs; do it only when the body alone comes near the limit.
    if (bodySize > max || (bodySize > max - 64 * 1024 && encodedSize(msg) > max)) {
      delivery.reject({ condition: "amqp:link:message-size-exceeded", description: `message of about ${bodySize} bytes is over the limit of ${max} bytes (plugins.amqp.max_message_bytes)` });
      receiver.add_credit(1);
      return;
    }
    let forwarded: Message | undefined;
    let inbound: InboundMessage | undefined;
    try {
      forwarded = this.mayForward(dl.principal) ? strataMessageFromAmqp(msg, dl.principal.id) : undefined;
      // A forwarded message carries its Strata id and is kept as is: no device-message view is needed.
      if (!forwarded) inbound = inboundFromAmqp(msg);
    } catch (err) {
      delivery.reject({ condition: "amqp:decode-error", description: (err as Error).message });
      receiver.add_credit(1);
      return;
    }
    try {
      await this.durably(dl, () => (forwarded ? this.opts.hub.forward(dl.principal, forwarded) : this.opts.hub.ingest(dl.principal, inbound!)));
      if (!receiver.is_open()) return; // gone meanwhile: the client sends it again
      delivery.accept();
    } catch (err) {
      if (!receiver.is_open()) return;
      const code = isStrataError(err) ? err.code : undefined;
      this.opts.log.warn({ err, identity: dl.principal.id }, "amqp message refused");
      delivery.reject({
        condition: code === "STRATA_HUB_SOURCE_MISMATCH" ? "amqp:not-allowed" : "amqp:internal-error",
        description: (err as Error).message ?? String(err),
      });
    }
    // Credit follows the store: one more only once this one is settled.
    this.grant(receiver);
  }

  /**
   * A child gateway's batch (core/upstream/batch.ts): every message is made durable, then the one transfer is
   * accepted. Any failure rejects the whole batch, which the child takes as "send each again alone" (the ones
   * already stored are then dropped as duplicates), so a refusal always ends up naming its own message.
   */
  private async onTelemetryBatch(dl: AmqpDeviceLink, receiver: Receiver, delivery: Delivery, payload: Buffer): Promise<void> {
    const refuse = (condition: string, description: string) => {
      // The child sends each message again alone, where a refusal is its own; this names why the batch was not taken.
      this.opts.log.info({ identity: dl.principal.id, condition, description }, "amqp batch refused; the child sends each again alone");
      delivery.reject({ condition, description });
      this.grant(receiver);
    };
    if (!this.mayForward(dl.principal)) return refuse("amqp:not-allowed", "only a gateway forwarding for its scope may send batches");
    if (payload.length > this.opts.config.max_message_bytes) {
      return refuse("amqp:link:message-size-exceeded", `batch of ${payload.length} bytes is over the limit of ${this.opts.config.max_message_bytes} bytes (plugins.amqp.max_message_bytes)`);
    }
    let groups: [Principal, Message[]][];
    let count: number;
    try {
      const batch = decodeBatch(payload);
      count = batch.messages.length;
      if (batch.version === 3) {
        const mixed = this.bySource(dl.principal, batch.messages);
        if (typeof mixed === "string") return refuse(UNAUTHORIZED, mixed);
        groups = mixed;
      } else {
        groups = [[dl.principal, batch.version === 2
          ? batch.messages.map((m) => (m.source ? m : { ...m, source: dl.principal.id }))
          : batch.messages.map((m) => {
            const forwarded = strataMessageFromAmqp(m as AmqpMessageIn, dl.principal.id);
            if (!forwarded) throw new Error("a batched message has no Strata id");
            return forwarded;
          })]];
      }
    } catch (err) {
      return refuse("amqp:decode-error", (err as Error).message);
    }
    try {
      const hub = this.opts.hub;
      await this.durably(dl, () => hub.forwardGroups(groups));
      if (!receiver.is_open()) return;
      delivery.accept();
    } catch (err) {
      if (!receiver.is_open()) return;
      this.opts.log.warn({ err, identity: dl.principal.id, count }, "amqp batch refused; the child sends each again alone");
      delivery.reject({ condition: "amqp:internal-error", description: (err as Error).message ?? String(err) });
    }
    this.grant(receiver);
  }

  /**
   * A version 3 batch's messages grouped by source, each group with the principal it is forwarded for: the
   * sending gateway itself, or an identity in its scope, checked as an on-behalf-of link for it would be (the
   * chain as this gateway sees it, every identity on it enabled). A string names the first source refused; the
   * child then sends each message alone on its identity's link, where the refusal lands on that message only.
   */
  private bySource(actor: Principal, messages: readonly Message[]): [Principal, Message[]][] | string {
    if (actor.method === "on-behalf-of") {
      return `a batch of several identities comes on the sending gateway's own link, not on one it holds for ${actor.id}`;
    }
    const groups = new Map<string, [Principal, Message[]]>();
    let checked = this.checkedSources.get(actor);
    if (!checked) this.checkedSources.set(actor, (checked = new Map()));
    for (const m of messages) {
      const source = m.source || actor.id;
      let group = groups.get(source);
      if (!group) {
        let principal = source === actor.id ? actor : checked.get(source);
        if (!principal) {
          const chain = this.opts.identities.authChain(source);
          const at = chain ? chain.indexOf(actor.id) : -1;
          if (!chain || at < 1) return `record from ${source}: not in ${actor.id}'s scope at this gateway`;
          const result = this.opts.identities.verifyOnBehalfOf(actor, source, chain.slice(0, at + 1));
          if (!result.ok) return `record from ${source}: ${result.detail}`;
          principal = result.principal;
          checked.set(source, principal);
        }
        groups.set(source, (group = [principal, []]));
      }
      group[1].push(m.source === source ? m : { ...m, source });
    }
    return [...groups.values()];
  }

  private readonly credits = new Map<Receiver, number>();
  private creditFlush: NodeJS.Immediate | undefined;

  /** One credit back per settled message, sent as one flow frame per link per tick rather than one per message. */
  private grant(receiver: Receiver): void {
    this.credits.set(receiver, (this.credits.get(receiver) ?? 0) + 1);
    this.creditFlush ??= setImmediate(() => {
      this.creditFlush = undefined;
      for (const [r, n] of this.credits) if (r.is_open()) r.add_credit(n);
      this.credits.clear();
    });
  }

  /** Strata ids are honoured from gateways (acting for others, or edge identities), never from plain devices. */
  private mayForward(principal: Principal): boolean {
    return principal.method === "on-behalf-of" || this.opts.identities.get(principal.id)?.edge === true;
  }

  /** Runs a hub write, retrying with capped back-off while the store is at its quota (no credit meanwhile). */
  private async durably<T>(dl: AmqpDeviceLink, write: () => Promise<T>): Promise<T> {
    const { quota_retry_min_ms: min, quota_retry_max_ms: max } = this.opts.config;
    let wait = min;
    for (let attempt = 0; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        if (!isStrataError(err, "STRATA_STORE_QUOTA") || dl.closed || this.closing) throw err;
        if (attempt === 0) this.opts.log.warn({ identity: dl.principal.id, err }, "amqp message held: store at quota");
        await delay(wait);
        wait = Math.min(wait * 2, Math.max(min, max));
      }
    }
  }

  // ---- twin and methods ---------------------------------------------------------------------------------

  private async onTwinRequest(dl: AmqpDeviceLink, receiver: Receiver, delivery: Delivery, msg: AmqpMessageIn): Promise<void> {
    delivery.accept();
    receiver.add_credit(1);
    const ann = msg.message_annotations ?? {};
    const operation = String(ann["operation"] ?? "").toUpperCase();
    const resource = String(ann["resource"] ?? "");
    const cid = (msg as { correlation_id?: unknown }).correlation_id;
    const reply = (status: number, body?: unknown, version?: number): void => {
      const annotations: Record<string, unknown> = { status };
      if (version !== undefined) annotations["version"] = version;
      const out = { correlation_id: echoId(cid), message_annotations: annotations, body: body === undefined ? undefined : jsonBody(body) };
      if (dl.twin && !dl.twin.closed) dl.twin.post(out);
    };
    const id = dl.principal.id;
    try {
      if (operation === "GET") {
        const twin = await this.opts.hub.getTwin(id);
        reply(200, { desired: twin.properties.desired, reported: twin.properties.reported }, twin.version);
      } else if (operation === "PATCH" && resource.toLowerCase() === "/properties/reported") {
        const patch = parseJsonBody(msg.body);
        if (!patch || typeof patch !== "object" || Array.isArray(patch)) {
          reply(400, { errorCode: 400004, message: "a reported patch must be a JSON object" });
          return;
        }
        const version = await this.opts.hub.patchReported(id, patch as Record<string, unknown>);
        reply(204, undefined, version);
      } else if ((operation === "PUT" || operation === "DELETE") && resource.toLowerCase() === "/notifications/twin/properties/desired") {
        dl.desiredSubscribed = operation === "PUT";
        this.opts.log.debug({ identity: id, on: dl.desiredSubscribed }, "amqp desired subscription");
        reply(200);
        dl.changed();
      } else {
        reply(400, { errorCode: 400004, message: `unsupported twin operation ${operation} ${resource}` });
      }
    } catch (err) {
      this.opts.log.error({ err, identity: id }, "amqp twin request failed");
      reply(500, { errorCode: 500001, message: "twin operation failed; see the gateway log" });
    }
  }

  private onMethodResponse(dl: AmqpDeviceLink, receiver: Receiver, delivery: Delivery, msg: AmqpMessageIn): void {
    delivery.accept();
    receiver.add_credit(1);
    const rid = idToString((msg as { correlation_id?: unknown }).correlation_id);
    const status = Number(msg.application_properties?.[METHOD_STATUS_PROPERTY] ?? 200);
    if (rid === undefined || !dl.methodResponse(rid, Number.isFinite(status) ? status : 500, parseJsonBody(msg.body))) {
      this.opts.log.debug({ identity: dl.principal.id, rid }, "amqp method response for no pending call");
    }
  }
}

function addressOf(link: Sender | Receiver): string | undefined {
  return (link.is_sender() ? link.source?.address : link.target?.address) as string | undefined;
}

/**
 * Answer an attach with the terminus the client asked for: a null source/target in our attach would tell
 * strict clients (qpid-proton) the node was not created.
 */
function echoTerminus(link: Sender | Receiver): void {
  const l = link as unknown as { set_source(f: unknown): void; set_target(f: unknown): void; source?: { address?: string }; target?: { address?: string } };
  if (l.source?.address !== undefined) l.set_source({ address: l.source.address });
  if (l.target?.address !== undefined) l.set_target({ address: l.target.address });
}
