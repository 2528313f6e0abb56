import mqtt, { type IClientOptions, type IClientPublishOptions, type IConnackPacket, type MqttClient } from "mqtt";
import { coalesceWrites, type DeliveryOutcome, type Logger } from "../../core/index.js";
import type { Outgoing } from "./payload.js";

export interface PublisherOptions {
  url: string;
  protocolVersion: 4 | 5;
  clientId: string;
  username?: string;
  password?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  qos: 1 | 2;
  retain: boolean;
  maxInFlight: number;
  connectTimeoutMs: number;
  ackTimeoutMs: number;
  keepaliveSecs: number;
  logger: Logger;
}

export interface Publication {
  topic: string;
  outgoing: Outgoing;
}

/** Publications read one at a time (an array will do): the sink builds each one only when it goes out. */
export interface Publications {
  readonly length: number;
  at(index: number): Publication | undefined;
}


/**
 * MQTT 5 reason codes in a PUBACK/PUBREC that no retry can change for this message: it goes to the
 * dead-letter area with the reason. Every other failure (not authorised, quota, a lost connection) is
 * retried: an operator can fix the broker, and the hub keeps the message meanwhile.
 */
const PERMANENT_REASONS: Readonly<Record<number, string>> = {
  0x90: "topic name invalid",
  0x99: "payload format invalid",
};

/** What an MQTT 5 broker announced in its CONNACK that bounds what we send. */
interface ServerLimits {
  /** Publishes awaiting acknowledgement it accepts at once [MQTT-3.3.4-7]. */
  receiveMaximum: number;
  /** Largest packet it accepts; a larger one would make it disconnect us, again and again [MQTT-3.1.2-24]. */
  maximumPacketSize: number;
}

const NO_LIMITS: ServerLimits = { receiveMaximum: 65535, maximumPacketSize: Infinity };

/**
 * Owns at most one MQTT.js connection to the broker and publishes batches on it. A message counts as
 * delivered only once the broker acknowledged it (PUBACK at QoS 1, PUBCOMP at QoS 2).
 *
 * MQTT.js's own reconnect is off (`reconnectPeriod: 0`) and every connection is a fresh client with a
 * clean session: when a connection drops, its unacknowledged publishes are reported "retry" and MQTT.js
 * keeps no copy to resend behind our back, so the hub's queue is the only place a message waits.
 */
export class BrokerPublisher {
  private client: MqttClient | undefined;
  /** The connection the latest batch went out on (a pipelined batch must use the same one). */
  private lastBatchClient: MqttClient | undefined;
  /** Publishes awaiting acknowledgement, over every batch in flight (the broker's receive maximum bounds them all). */
  private readonly window = new Set<Promise<void>>();
  /** Resolves when the latest batch has issued all of its publishes. */
  private issuing: Promise<void> = Promise.resolve();
  private limits: ServerLimits = NO_LIMITS;
  private connecting: Promise<MqttClient> | undefined;
  /** Gives up the connection attempt in progress (stop must not wait out a connect timeout). */
  private abandonConnect: (() => void) | undefined;
  private closed = false;
  /** False from the first failed connection attempt until one succeeds: an outage is logged once, not per retry. */
  private reachable = true;

  constructor(private readonly opts: PublisherOptions) {}

  /**
   * Publishes in order, at most `maxInFlight` awaiting acknowledgement across every batch in flight; one
   * outcome per publication. Batches may overlap (the hub's drain pipelines them): a batch starts issuing
   * only once the one before it has issued all of its publishes, so the broker sees them in queue order.
   * `pipelined` (an earlier batch is unsettled): only on that batch's connection, else all "retry".
   */
  async publishAll(items: Publications, signal: AbortSignal, pipelined = false): Promise<DeliveryOutcome[]> {
    const outcomes: DeliveryOutcome[] = new Array<DeliveryOutcome>(items.length).fill("retry");
    if (items.length === 0 || signal.aborted) return outcomes;
    const previous = this.issuing;
    let issued!: () => void;
    this.issuing = new Promise<void>((resolve) => (issued = resolve));
    try {
      await previous;
      let client: MqttClient;
      if (pipelined) {
        if (!this.client?.connected || this.client !== this.lastBatchClient) return outcomes;
        client = this.client;
      } else {
        try {
          client = await this.connection(signal);
        } catch (err) {
          if (!signal.aborted) this.unreachable(err);
          return outcomes;
        }
      }
      this.lastBatchClient = client;
      return await this.publishOn(client, items, outcomes, signal, issued);
    } finally {
      issued();
    }
  }

  private async publishOn(
    client: MqttClient, items: Publications, outcomes: DeliveryOutcome[], signal: AbortSignal, issued: () => void,
  ): Promise<DeliveryOutcome[]> {
    // Every publish awaiting its acknowledgement, by its settle function: a lost connection or a stop
    // settles them all as "retry" at once.
    const awaiting = new Set<(outcome: DeliveryOutcome) => void>();
    const retryAll = () => [...awaiting].forEach((settle) => settle("retry"));
    signal.addEventListener("abort", retryAll, { once: true });
    client.once("close", retryAll);
    // One watchdog per batch, not a timer per publish: re-armed by every acknowledgement, it fires only
    // when publishes wait and nothing at all comes back for ack_timeout_ms (a half-open connection).
    const watchdog = setTimeout(() => {
      if (awaiting.size === 0) return;
      this.opts.logger.warn({ url: this.opts.url, waiting: awaiting.size, timeoutMs: this.opts.ackTimeoutMs }, "mqtt sink publishes not acknowledged in time, reconnecting");
      retryAll();
      this.drop(client);
    }, this.opts.ackTimeoutMs);
    const progress = () => watchdog.refresh();
    const mine: Promise<void>[] = [];
    const maxInFlight = Math.min(this.opts.maxInFlight, this.limits.receiveMaximum);
    let broken = false;
    try {
      for (let i = 0; i < items.length && !broken && !signal.aborted; i++) {
        const index = i;
        const item = items.at(index)!;
        const tooLarge = this.oversize(item);
        if (tooLarge) {
          outcomes[index] = { deadLetter: tooLarge };
          continue;
        }
        while (this.window.size >= maxInFlight) await Promise.race(this.window);
        if (broken || signal.aborted) break;
        const p = this.publishOne(client, item, awaiting, progress).then((outcome) => {
          outcomes[index] = outcome;
          if (outcome === "retry") broken = true;
        });
        this.window.add(p);
        void p.finally(() => this.window.delete(p));
        mine.push(p);
      }
      issued();
      await Promise.all(mine);
    } finally {
      clearTimeout(watchdog);
      signal.removeEventListener("abort", retryAll);
      client.off("close", retryAll);
    }
    // A connection that failed one publish is dropped: the next batch starts on a fresh one.
    if (broken) this.drop(client);
    return outcomes;
  }

  /** Connects ahead of the first batch, so that a wrong URL or credential shows in the log at start. */
  warmUp(): void {
    this.connection(new AbortController().signal).catch((err: unknown) => {
      if (!this.closed) this.unreachable(err);
    });
  }

  private unreachable(err: unknown): void {
    const log = this.opts.logger;
    if (this.reachable) log.warn({ err, url: this.opts.url }, "mqtt sink cannot reach the broker, messages wait in its queue and are retried");
    else log.debug({ err, url: this.opts.url }, "mqtt sink still cannot reach the broker");
    this.reachable = false;
  }

  /** Disconnects (gracefully when possible, within a bound). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.abandonConnect?.();
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => client.end(true, () => resolve()), 2000);
      client.end(false, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Why the broker would refuse this publish for its size (undefined when it fits). */
  private oversize(item: Publication): string | undefined {
    const max = this.limits.maximumPacketSize;
    if (max === Infinity) return undefined;
    let size = 16 + Buffer.byteLength(item.topic) + item.outgoing.payload.length;
    const props = item.outgoing.properties;
    if (props) {
      size += Buffer.byteLength(props.contentType ?? "") + 3;
      for (const [k, v] of Object.entries(props.userProperties)) size += 5 + Buffer.byteLength(k) + Buffer.byteLength(v);
    }
    return size > max ? `about ${size} bytes as an MQTT packet; the broker accepts at most ${max} (its maximum packet size)` : undefined;
  }

  private publishOne(
    client: MqttClient,
    item: Publication,
    awaiting: Set<(o: DeliveryOutcome) => void>,
    progress: () => void,
  ): Promise<DeliveryOutcome> {
    return new Promise((resolve) => {
      const settle = (outcome: DeliveryOutcome) => {
        if (!awaiting.delete(settle)) return;
        resolve(outcome);
      };
      awaiting.add(settle);
      if (!client.connected) return settle("retry");
      const options: IClientPublishOptions = { qos: this.opts.qos, retain: this.opts.retain };
      if (item.outgoing.properties) options.properties = item.outgoing.properties;
      client.publish(item.topic, item.outgoing.payload, options, (err) => {
        progress();
        if (!err) return settle("delivered");
        const raw = (err as { code?: unknown }).code;
        const code = typeof raw === "number" ? raw : -1;
        const permanent = PERMANENT_REASONS[code];
        if (permanent) {
          settle({ deadLetter: `broker refused the message: ${permanent} (MQTT reason 0x${code.toString(16)})` });
        } else {
          if (awaiting.has(settle)) this.opts.logger.warn({ err, topic: item.topic }, "mqtt sink publish failed, will retry");
          settle("retry");
        }
      });
    });
  }

  private async connection(signal: AbortSignal): Promise<MqttClient> {
    if (this.closed) throw new Error("mqtt sink is stopped");
    if (this.client?.connected) return this.client;
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return await abortable(this.connecting, signal);
  }

  private connect(): Promise<MqttClient> {
    const o = this.opts;
    const options: IClientOptions = {
      protocolVersion: o.protocolVersion,
      clientId: o.clientId,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: o.connectTimeoutMs,
      keepalive: o.keepaliveSecs,
      resubscribe: false,
      // mqtt.js traces every packet through `debug` even when it prints nothing (~1% of the sink's CPU);
      // with DEBUG set (e.g. DEBUG=mqttjs*) its own tracing stays on.
      ...(process.env.DEBUG ? {} : { log: () => {} }),
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.ca ? { ca: o.ca } : {}),
      ...(o.cert ? { cert: o.cert } : {}),
      ...(o.key ? { key: o.key } : {}),
    };
    const client = mqtt.connect(o.url, options);
    // Small publishes pipelined against acknowledgements: Nagle would hold a batch's tail for the peer's
    // delayed ACK (~40 ms per batch), capping the sink at a few thousand messages per second.
    (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
    coalesceWrites(client.stream);
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        this.abandonConnect = undefined;
        client.removeListener("connect", onConnect);
        client.end(true);
        reject(err);
      };
      this.abandonConnect = () => fail(new Error("mqtt sink is stopped"));
      const onError = (err: Error) => fail(err);
      const onClose = () => fail(new Error(`connection to ${o.url} closed before CONNACK`));
      const onConnect = (connack: IConnackPacket) => {
        this.abandonConnect = undefined;
        client.off("error", onError);
        client.off("close", onClose);
        if (this.closed) return fail(new Error("mqtt sink is stopped"));
        // After this, errors surface as "close" (handled per publish); keep one listener so none is unhandled.
        client.on("error", (err) => o.logger.warn({ err, url: o.url }, "mqtt sink connection error"));
        client.once("close", () => {
          if (this.client === client) this.client = undefined;
          if (!this.closed) o.logger.warn({ url: o.url }, "mqtt sink lost the broker connection");
          client.end(true);
        });
        this.client = client;
        this.limits = {
          receiveMaximum: connack.properties?.receiveMaximum ?? NO_LIMITS.receiveMaximum,
          maximumPacketSize: connack.properties?.maximumPacketSize ?? NO_LIMITS.maximumPacketSize,
        };
        o.logger.info({ url: o.url, clientId: o.clientId, ...this.limits, afterOutage: !this.reachable }, "mqtt sink connected");
        this.reachable = true;
        resolve(client);
      };
      client.once("connect", onConnect);
      client.once("error", onError);
      client.once("close", onClose);
    });
  }

  private drop(client: MqttClient): void {
    if (this.client === client) this.client = undefined;
    client.end(true);
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error("aborted"));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

