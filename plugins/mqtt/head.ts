import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { TLSSocket, type DetailedPeerCertificate } from "node:tls";
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket, type Subscription } from "aedes";
import {
  coalesceWrites, isStrataError, type AuthFailure, type AuthResult, type Hub, type Identities, type InboundMessage, type Logger,
} from "../../core/index.js";
import { AedesChannel } from "./aedes-channel.js";
import type { MqttConfig } from "./config.js";
import { parseClientId, parseUsername, type ConnectInfo } from "./connect-info.js";
import { MqttLink } from "./link.js";
import { inboundFromBag } from "./property-bag.js";
import type { SessionStore } from "./sessions.js";
import { checkPublish, checkSubscription, twinResponseTopic, type InboundTopic } from "./topics.js";

/** CONNACK return codes of MQTT 3.1.1 [MQTT-3.2.2.3]. */
const CONNACK = { IDENTIFIER_REJECTED: 2, SERVER_UNAVAILABLE: 3, BAD_CREDENTIALS: 4, NOT_AUTHORIZED: 5 } as const;

/** Where a refused PUBLISH is sent after it was taken apart: no subscription can match a `$strata/` topic. */
const REFUSED_TOPIC = "$strata/refused";

export interface MqttHeadOptions {
  hub: Hub;
  identities: Identities;
  sessions: SessionStore;
  log: Logger;
  config: MqttConfig;
  /** A CONNECT refused before any credential was checked (malformed client id or user name), for /metrics. */
  onMalformedConnect?: () => void;
}

interface Connection {
  link: MqttLink;
  channel: AedesChannel;
  info: ConnectInfo;
  /** Granted filters and their QoS: what a persistent session stores. */
  filters: Map<string, 0 | 1>;
  expiry?: NodeJS.Timeout;
}

/**
 * The MQTT head: one aedes broker used as a protocol engine, not as a broker. Devices never reach each other
 * through it (authorizeForward lets through only the gateway's own replies); every PUBLISH is either handed
 * to the hub (telemetry, twin and method traffic) or refused; every delivery goes to one client.
 *
 * Refusals never close the connection: an error from aedes's authorizePublish drops the connection, and the
 * Azure SDK then reconnects and republishes the same message forever (spikes.md §2). MQTT 3.1.1 has no
 * negative PUBACK, and a PUBACK would tell the device its message was taken (never ack what is not
 * durable), so a refused PUBLISH is swallowed without PUBACK (or PUBREC for QoS 2): the connection stays
 * up, other traffic flows, the refusal is logged, and the device's own publish timeout reports it
 * (the Node SDK fails sendEvent with "Message not acknowledged" after 30 s, retries within its operation
 * timeout, then gives up). A refused SUBSCRIBE gets SUBACK 0x80.
 */
export class MqttHead {
  private readonly connections = new WeakMap<Client, Connection>();
  private readonly streams = new Set<Duplex>();
  private closing = false;

  private constructor(private readonly broker: Aedes, private readonly opts: MqttHeadOptions) {}

  static async create(opts: MqttHeadOptions): Promise<MqttHead> {
    let head: MqttHead | undefined;
    const broker = await Aedes.createBroker({
      connectTimeout: opts.config.connect_timeout_ms,
      // [MQTT-3.1.3-5] 3.1.1 allows up to 23; IoT Hub ids are up to 128 + "/" + 128.
      maxClientsIdLength: 257,
      authenticate: (client, username, password, done) => head!.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => head!.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => head!.authorizeSubscribe(client, sub, done),
      authorizeForward: (client, packet) => head?.connections.get(client)?.channel.forward(packet) ?? null,
    });
    head = new MqttHead(broker, opts);
    head.takeOverPersistence();
    skipConsumedPublishes(broker);
    broker.on("clientReady", (client) => head!.connections.get(client)?.link.markReady());
    broker.on("subscribe", (subs, client) => {
      // After the SUBACK: the hub may now deliver what these subscriptions accept.
      opts.log.debug({ clientId: client.id, topics: subs.filter((s) => (s.qos as number) !== 128).map((s) => s.topic) }, "mqtt subscribed");
      head!.connections.get(client)?.link.changed();
    });
    broker.on("unsubscribe", (topics, client) => void head!.unsubscribed(client, topics));
    broker.on("clientError", (client, err) => opts.log.debug({ err, clientId: client.id }, "mqtt client error"));
    broker.on("connectionError", (_client, err) => opts.log.debug({ err }, "mqtt connection error"));
    return head;
  }

  /** A new connection: a TLS socket, or a WebSocket stream with its upgrade request. */
  handle(stream: Duplex, req?: IncomingMessage): void {
    if (this.closing) {
      stream.destroy();
      return;
    }
    this.streams.add(stream);
    stream.once("close", () => this.streams.delete(stream));
    // PUBACKs are small writes pipelined against the device's publishes: Nagle would hold one behind the
    // device's delayed ACK (up to ~40 ms), which the device's in-flight window turns into throughput lost.
    (stream as { setNoDelay?: (on?: boolean) => void }).setNoDelay?.(true);
    coalesceWrites(stream);
    const client = this.broker.handle(stream, req);
    grantAtMostQos1(client);
  }

  /** Disconnects every device (its link leaves the hub) and closes the broker. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const stream of this.streams) stream.destroy();
    this.streams.clear();
    await new Promise<void>((resolve) => this.broker.close(() => resolve()));
  }

  // ---- CONNECT ------------------------------------------------------------------------------------------

  private authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (err: (Error & { returnCode: number }) | null, ok: boolean | null) => void,
  ): void {
    this.connect(client, username, password).then(
      (code) => (code === 0 ? done(null, true) : done(refusal(code), false)),
      (err: unknown) => {
        this.opts.log.error({ err, clientId: client.id }, "mqtt connect failed");
        done(refusal(CONNACK.SERVER_UNAVAILABLE), false);
      },
    );
  }

  /** Resolves with 0 (accepted) or the CONNACK code refusing it. */
  private async connect(client: Client, username: string | undefined, password: Buffer | undefined): Promise<number> {
    const log = this.opts.log;
    if (this.closing) return CONNACK.SERVER_UNAVAILABLE;
    const id = parseClientId(client.id);
    if (!id.ok) {
      log.info({ clientId: client.id, reason: id.reason }, "mqtt connection refused");
      this.opts.onMalformedConnect?.();
      return CONNACK.IDENTIFIER_REJECTED;
    }
    const parsed = parseUsername(username, id.value);
    if (!parsed.ok) {
      log.info({ clientId: client.id, reason: parsed.reason }, "mqtt connection refused");
      this.opts.onMalformedConnect?.();
      return CONNACK.BAD_CREDENTIALS;
    }
    const info = parsed.value;
    const auth = this.verify(client, info, password);
    if (!auth.ok) {
      log.info({ clientId: client.id, reason: auth.reason, detail: auth.detail }, "mqtt connection refused");
      return connackFor(auth.reason);
    }
    const principal = auth.principal;

    // [MQTT-3.1.2-4] clean=false resumes the stored session: aedes restores what its persistence returns.
    if (client.clean) await this.opts.sessions.drop(principal.id);
    else {
      const stored = await this.opts.sessions.load(principal.id);
      if (stored && stored.subscriptions.length > 0) {
        await (this.broker as unknown as PersistenceOwner).persistence.addSubscriptions(client, stored.subscriptions);
      }
    }
    if (client.closed || this.closing) return CONNACK.SERVER_UNAVAILABLE;

    const channel = new AedesChannel(client);
    const link = new MqttLink(principal, channel, log);
    const conn: Connection = { link, channel, info, filters: new Map() };
    try {
      link.attachment = this.opts.hub.attach(link);
    } catch (err) {
      if (isStrataError(err, "STRATA_HUB_MAX_CLIENTS")) {
        log.warn({ clientId: client.id, reason: err.message }, "mqtt connection refused");
        return CONNACK.SERVER_UNAVAILABLE;
      }
      throw err;
    }
    this.connections.set(client, conn);
    const gone = (): void => {
      if (conn.expiry) clearTimeout(conn.expiry);
      channel.closed();
      link.onClosed();
    };
    if (client.conn.destroyed) gone();
    else client.conn.once("close", gone);
    if (principal.expiresAt !== undefined) {
      // IoT Hub drops a connection when its token expires; the SDKs reconnect with a fresh one before that.
      const ms = Math.min(Math.max(principal.expiresAt * 1000 - Date.now(), 0), 2 ** 31 - 1);
      conn.expiry = setTimeout(() => link.close("credential expired"), ms);
      conn.expiry.unref();
    }
    log.info({ clientId: client.id, identity: principal.id, method: principal.method, clean: client.clean }, "mqtt client connected");
    return 0;
  }

  private verify(client: Client, info: ConnectInfo, password: Buffer | undefined): AuthResult {
    const ids = this.opts.identities;
    const chain = info.authChain && info.authChain.length > 1 ? info.authChain : undefined;
    // On behalf of: the credential is the acting gateway's (the chain's last element), not the target's.
    const presenter = chain ? chain[chain.length - 1]! : info.id;
    let result: AuthResult;
    if (password && password.length > 0) {
      result = ids.verifySas(presenter, password.toString("utf8"));
    } else {
      const { certs, tlsVerified } = peerChain(client);
      if (certs.length === 0) {
        return { ok: false, reason: "malformed", detail: "no password (SAS token) and no client certificate" };
      }
      result = ids.verifyCertificate(presenter, certs, undefined, { tlsVerified });
    }
    if (!result.ok || !chain) return result;
    return ids.verifyOnBehalfOf(result.principal, info.id, chain);
  }

  // ---- PUBLISH ------------------------------------------------------------------------------------------

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    const conn = client ? this.connections.get(client) : undefined;
    // A will (published when the client is gone) is not an IoT Hub feature: refusing it publishes nothing.
    if (!client || client.closed || !conn) return done(new Error("not accepted"));
    packet.retain = false; // IoT Hub keeps no retained messages
    const { link } = conn;
    if (packet.qos === 2) return this.refuse(client, packet, done, "QoS 2 is not supported (IoT Hub offers QoS 0 and 1); publish with QoS 1");
    const size = Buffer.byteLength(packet.topic) + packet.payload.length;
    if (size > this.opts.config.max_message_bytes) {
      return this.refuse(client, packet, done, `message of ${size} bytes is over the limit of ${this.opts.config.max_message_bytes} bytes (plugins.mqtt.max_message_bytes)`);
    }
    const check = checkPublish(link.principal, packet.topic);
    if (!check.ok) return this.refuse(client, packet, done, check.reason);
    const topic = check.topic;
    const body = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    if (topic.kind === "telemetry") return this.telemetry(client, conn, packet, topic, body, done);
    // Twin and method traffic is request/response: the reply topic carries the outcome, so the PUBACK of a
    // request only says it arrived.
    this.request(conn, topic, body);
    consume(packet);
    done(null);
  }

  /** Telemetry: PUBACK only once the hub has it durably (the deferred callback delays aedes's PUBACK). */
  private telemetry(
    client: Client, conn: Connection, packet: PublishPacket, topic: Extract<InboundTopic, { kind: "telemetry" }>, body: Buffer,
    done: (err?: Error | null) => void,
  ): void {
    let inbound: InboundMessage;
    try {
      inbound = inboundFromBag(topic.bag, body);
    } catch (err) {
      return this.refuse(client, packet, done, (err as Error).message);
    }
    this.ingestDurably(conn.link, inbound).then(
      () => {
        if (conn.link.closed) return; // gone meanwhile: no PUBACK to send; the device republishes
        consume(packet);
        corkedThisTick(client);
        done(null);
      },
      (err: unknown) => {
        if (conn.link.closed) return;
        this.refuse(client, packet, done, (err as Error).message ?? String(err), "error", err);
      },
    );
  }

  /**
   * hub.ingest, retried with capped back-off while the store is at its quota: the device gets no PUBACK
   * and, because aedes reads a client's next packets only after the current ones are done, sends nothing
   * more either (back-pressure that costs the gateway no memory). Stops when the connection closes.
   */
  private async ingestDurably(link: MqttLink, inbound: InboundMessage): Promise<void> {
    const { quota_retry_min_ms: min, quota_retry_max_ms: max } = this.opts.config;
    let wait = min;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.opts.hub.ingest(link.principal, inbound);
        return;
      } catch (err) {
        if (!isStrataError(err, "STRATA_STORE_QUOTA") || link.closed) throw err;
        if (attempt === 0) this.opts.log.warn({ identity: link.principal.id, err }, "mqtt publish held: store at quota");
        await delay(wait, undefined, { signal: link.signal }).catch(() => undefined);
        wait = Math.min(wait * 2, Math.max(min, max));
      }
    }
  }

  private request(conn: Connection, topic: InboundTopic, body: Buffer): void {
    const { link, channel } = conn;
    const id = link.principal.id;
    const reply = (status: number, rid: string, payload: unknown, version?: number): void => {
      const buf = payload === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(payload));
      channel.publish(twinResponseTopic(status, rid, version), buf, 0).catch(() => undefined);
    };
    const fail = (rid: string, err: unknown): void => {
      this.opts.log.error({ err, identity: id }, "mqtt twin request failed");
      reply(500, rid, { errorCode: 500001, message: "twin operation failed; see the gateway log" });
    };
    switch (topic.kind) {
      case "twin-get":
        this.opts.hub.getTwin(id).then(
          (twin) => reply(200, topic.rid, { desired: twin.properties.desired, reported: twin.properties.reported }),
          (err: unknown) => fail(topic.rid, err),
        );
        return;
      case "twin-reported": {
        let patch: unknown;
        try {
          patch = JSON.parse(body.toString("utf8"));
        } catch {
          patch = undefined;
        }
        if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
          // The Node SDK ignores the status and looks for errorCode in the body (iot-hub-wire.md).
          reply(400, topic.rid, { errorCode: 400004, message: "reported properties must be a JSON object" });
          return;
        }
        this.opts.hub.patchReported(id, patch as Record<string, unknown>).then(
          (version) => reply(204, topic.rid, undefined, version),
          (err: unknown) => fail(topic.rid, err),
        );
        return;
      }
      case "method-response":
        if (!link.methodResponse(decodeRid(topic.rid), topic.status, body)) {
          this.opts.log.debug({ identity: id, rid: topic.rid }, "mqtt method response for no pending request");
        }
        return;
    }
  }

  /** Logs and swallows a PUBLISH: no PUBACK, no PUBREC, nothing routed, the connection stays up. */
  private refuse(
    client: Client, packet: PublishPacket, done: (err?: Error | null) => void, reason: string,
    level: "warn" | "error" = "warn", err?: unknown,
  ): void {
    const topic = packet.topic.length > 200 ? `${packet.topic.slice(0, 197)}...` : packet.topic;
    this.opts.log[level]({ clientId: client.id, topic, qos: packet.qos, reason, ...(err ? { err } : {}) }, "mqtt publish refused");
    packet.qos = 0; // aedes acknowledges by QoS: 0 means no PUBACK/PUBREC
    consume(packet);
    done(null);
  }

  // ---- SUBSCRIBE ----------------------------------------------------------------------------------------

  private authorizeSubscribe(client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void {
    const conn = this.connections.get(client);
    if (!conn) return done(null, null);
    const check = checkSubscription(conn.link.principal, sub.topic);
    if (!check.ok) {
      this.opts.log.warn({ clientId: client.id, topic: sub.topic, reason: check.reason }, "mqtt subscription refused");
      return done(null, null); // SUBACK 0x80 [MQTT-3.9.3]
    }
    // IoT Hub grants at most QoS 1 [MQTT-3.8.4-6: the server may grant a lower QoS].
    const qos: 0 | 1 = sub.qos >= 1 ? 1 : 0;
    conn.link.subscribed(check.kind, qos);
    conn.filters.set(sub.topic, qos);
    const granted = { ...sub, qos };
    if (client.clean) return done(null, granted);
    this.saveSession(conn).then(
      () => done(null, granted),
      (err: unknown) => {
        this.opts.log.error({ err, clientId: client.id }, "mqtt session not saved");
        done(null, null);
      },
    );
  }

  private async unsubscribed(client: Client, topics: string[]): Promise<void> {
    const conn = this.connections.get(client);
    // aedes also "unsubscribes" a clean client as it closes; a persistent session keeps its subscriptions.
    if (!conn || client.closed) return;
    for (const topic of topics) {
      const check = checkSubscription(conn.link.principal, topic);
      if (check.ok) conn.link.unsubscribed(check.kind);
      conn.filters.delete(topic);
    }
    if (!client.clean) {
      await this.saveSession(conn).catch((err: unknown) => {
        this.opts.log.error({ err, clientId: client.id }, "mqtt session not saved");
      });
    }
  }

  /**
   * Writes the connection's granted filters to the session store. Each write carries the whole set as it is
   * when called, so of concurrent writes (aedes restores a session's filters in parallel) the last is complete.
   */
  private async saveSession(conn: Connection): Promise<void> {
    const subscriptions = [...conn.filters].map(([topic, qos]) => ({ topic, qos }));
    await this.opts.sessions.save(conn.link.principal.id, subscriptions);
  }

  // ---- aedes persistence --------------------------------------------------------------------------------

  /**
   * aedes's in-memory persistence would queue QoS 1 packets for offline clean=false clients and replay them
   * on reconnect; the hub already keeps undelivered C2D and module input messages durably and redelivers
   * them, so a replay would only duplicate. Its PUBACK handling is also the only place a PUBACK surfaces
   * with its message id: the channel learns the device acknowledged from here.
   */
  private takeOverPersistence(): void {
    const persistence = (this.broker as unknown as PersistenceOwner).persistence;
    persistence.outgoingEnqueue = async () => undefined;
    persistence.outgoingEnqueueCombi = async () => undefined;
    persistence.outgoingUpdate = async () => undefined;
    persistence.outgoingClearMessageId = async (client: Client, packet: { cmd?: string; messageId?: number }) => {
      if (packet?.cmd === "puback" && packet.messageId !== undefined) {
        this.connections.get(client)?.channel.puback(packet.messageId);
      }
      return undefined;
    };
  }
}

interface PersistenceOwner {
  persistence: {
    addSubscriptions(client: Client, subs: ReadonlyArray<{ topic: string; qos: number }>): Promise<void>;
    outgoingEnqueue: (...args: unknown[]) => Promise<unknown>;
    outgoingEnqueueCombi: (...args: unknown[]) => Promise<unknown>;
    outgoingUpdate: (...args: unknown[]) => Promise<unknown>;
    outgoingClearMessageId: (client: Client, packet: { cmd?: string; messageId?: number }) => Promise<unknown>;
  };
}

/**
 * IoT Hub grants at most QoS 1 to a QoS 2 SUBSCRIBE [MQTT-3.8.4-6 lets a server grant less]. aedes reports
 * in the SUBACK the QoS it read from the packet, whatever authorizeSubscribe returns, so the request is
 * lowered as it leaves the parser, before aedes handles it (a listener ahead of aedes's own).
 */
function grantAtMostQos1(client: Client): void {
  const parser = (client as unknown as { _parser?: NodeJS.EventEmitter })._parser;
  if (!parser || typeof parser.prependListener !== "function") return;
  parser.prependListener("packet", (packet: { cmd?: string; subscriptions?: Array<{ qos: number }> }) => {
    if (packet.cmd !== "subscribe" || !packet.subscriptions) return;
    for (const sub of packet.subscriptions) if (sub.qos > 1) sub.qos = 1;
  });
}

function refusal(code: number): Error & { returnCode: number } {
  return Object.assign(new Error(`connection refused (${code})`), { returnCode: code });
}

function connackFor(reason: AuthFailure): number {
  switch (reason) {
    case "malformed":
    case "expired":
    case "bad-signature":
    case "wrong-audience":
    case "bad-certificate":
      return CONNACK.BAD_CREDENTIALS;
    default:
      return CONNACK.NOT_AUTHORIZED;
  }
}

/**
 * aedes publishes every PUBLISH to its subscribers after our authorizePublish (for QoS 1 after the PUBACK).
 * A consumed one can reach no one, so skip that work (a Packet, the emitter's topic match, persistence
 * hooks: about a tenth of a gateway's CPU per telemetry message).
 */
function skipConsumedPublishes(broker: Aedes): void {
  const publish = broker.publish.bind(broker) as (packet: PublishPacket, client: unknown, done?: (err?: Error) => void) => void;
  (broker as unknown as { publish: typeof publish }).publish = (packet, client, done) => {
    if (packet.topic !== REFUSED_TOPIC) return publish(packet, client, done);
    const callback = typeof client === "function" ? (client as () => void) : done;
    callback?.();
  };
}

/** After the hub took a PUBLISH (or it was refused), aedes still "publishes" it: make that reach no one. */
function consume(packet: PublishPacket): void {
  packet.topic = REFUSED_TOPIC;
  packet.payload = Buffer.alloc(0);
  packet.retain = false;
}

function decodeRid(rid: string): string {
  try {
    return decodeURIComponent(rid);
  } catch {
    return rid;
  }
}

/**
 * The client certificate chain, leaf first, as DER: from the TLS socket, or a WebSocket's upgrade request; and
 * whether the handshake verified it against the trust bundle (node drops the client's intermediates here).
 */
function peerChain(client: Client): { certs: Buffer[]; tlsVerified: boolean } {
  const socket = client.conn instanceof TLSSocket ? client.conn : client.req?.socket;
  if (!(socket instanceof TLSSocket)) return { certs: [], tlsVerified: false };
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert && cert.raw && !seen.has(cert.fingerprint256)) {
    chain.push(cert.raw);
    seen.add(cert.fingerprint256);
    cert = cert.issuerCertificate;
  }
  return { certs: chain, tlsVerified: socket.authorized };
}

export type { AedesPublishPacket };

/**
 * One group commit resolves many publishes in the same tick: cork the client's stream until the next tick so
 * their PUBACKs leave in one write (one TLS record) instead of one write each.
 */
function corkedThisTick(client: Client): void {
  const stream = (client as unknown as { conn?: NodeJS.WritableStream & { cork?: () => void; uncork?: () => void; writableCorked?: number } }).conn;
  if (!stream?.cork || !stream.uncork || stream.writableCorked) return;
  stream.cork();
  process.nextTick(() => stream.uncork!());
}
