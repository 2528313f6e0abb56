import { readFileSync } from "node:fs";
import {
  inject, injectable, PluginError, readSecret, sinkQueue, TOKENS,
  type DeliverContext, type DeliveryOutcome, type EndpointConsumer, type Hub, type Lease, type Logger, type Plugin, type StrataConfig,
} from "../../core/index.js";
import type { MqttSinkConfig } from "./config.js";
import { toOutgoing } from "./payload.js";
import { BrokerPublisher } from "./publisher.js";
import { topicRouter } from "./topic.js";

export const PLUGIN_NAME = "mqtt-sink";

export interface MqttSinkStats {
  delivered: number;
  retried: number;
  deadLettered: number;
}

/**
 * The northbound MQTT sink: drains the endpoint queue `sink:<name>` (every message the root routes to it,
 * `$upstream` included) into an external broker. The hub runs the loop and keeps undelivered messages
 * durably queued; this class only turns a batch into publishes and reports each one "delivered" after the
 * broker's acknowledgement, or "retry".
 */
@injectable()
export class MqttSinkPlugin implements Plugin, EndpointConsumer {
  readonly batchSize: number;
  /** A second batch is published while the first one's acknowledgements come back (one shared window). */
  readonly pipeline = 2;
  private publisher: BrokerPublisher | undefined;
  private unconsume: (() => void) | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly topicFor: ReturnType<typeof topicRouter>;
  private readonly counters: MqttSinkStats = { delivered: 0, retried: 0, deadLettered: 0 };

  constructor(
    @inject(TOKENS.Hub) private readonly hub: Hub,
    @inject(TOKENS.Config) private readonly config: StrataConfig,
    @inject(TOKENS.PluginConfig) private readonly settings: MqttSinkConfig,
    @inject(TOKENS.Logger) private readonly logger: Logger,
  ) {
    this.batchSize = settings.max_in_flight;
    this.topicFor = topicRouter(settings.topic, settings.module_topic, { hub: config.hub, sink: settings.name });
  }

  async start(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const s = this.settings;
    if (s.protocol_version === 4 && s.format === "raw") {
      this.logger.warn({ url: s.url }, "mqtt sink on MQTT 3.1.1 with format raw carries bodies only; set format = \"envelope\" to keep properties");
    }
    this.publisher = new BrokerPublisher({
      url: s.url,
      protocolVersion: s.protocol_version,
      clientId: s.client_id ?? `strata-${this.config.device_id}-${s.name}`,
      ...(s.username !== undefined ? { username: s.username } : {}),
      ...(s.password_file !== undefined ? { password: this.secret(s.password_file, "password_file") } : {}),
      ...(s.ca_file !== undefined ? { ca: this.file(s.ca_file, "ca_file") } : {}),
      ...(s.cert_file !== undefined ? { cert: this.file(s.cert_file, "cert_file") } : {}),
      ...(s.key_file !== undefined ? { key: Buffer.from(this.secret(s.key_file, "key_file")) } : {}),
      qos: s.qos,
      retain: s.retain,
      maxInFlight: s.max_in_flight,
      connectTimeoutMs: s.connect_timeout_ms,
      ackTimeoutMs: s.ack_timeout_ms,
      keepaliveSecs: s.keepalive_secs,
      logger: this.logger,
    });
    // The broker need not be up: messages wait in the sink's queue and are delivered when it is.
    this.hub.addSink(s.name);
    this.unconsume = this.hub.consume(sinkQueue(s.name), this);
    this.publisher.warmUp();
    this.logger.info({ sink: s.name, url: s.url, qos: s.qos, format: s.format }, "mqtt sink started");
  }

  async stop(): Promise<void> {
    this.unconsume?.();
    this.unconsume = undefined;
    await Promise.allSettled([...this.inFlight]);
    await this.publisher?.close();
    this.publisher = undefined;
  }

  stats(): MqttSinkStats {
    return { ...this.counters };
  }

  deliver(leases: readonly Lease[], signal: AbortSignal, ctx?: DeliverContext): Promise<DeliveryOutcome[]> {
    const p = this.publish(leases, signal, ctx?.pipelined ?? false);
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }

  private async publish(leases: readonly Lease[], signal: AbortSignal, pipelined: boolean): Promise<DeliveryOutcome[]> {
    const publisher = this.publisher;
    if (!publisher) return leases.map(() => "retry");
    const { format, protocol_version } = this.settings;
    const outcomes = await publisher.publishAll(
      { length: leases.length, at: (i) => ({ topic: this.topicFor(leases[i]!.message), outgoing: toOutgoing(leases[i]!.message, format, protocol_version) }) },
      signal,
      pipelined,
    );
    for (const o of outcomes) {
      if (o === "delivered") this.counters.delivered++;
      else if (o === "retry") this.counters.retried++;
      else this.counters.deadLettered++;
    }
    return outcomes;
  }

  private file(path: string, key: string): Buffer {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new PluginError(PLUGIN_NAME, "STRATA_MQTTSINK_FILE",
        `plugins.${PLUGIN_NAME}.${key}: ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"}); fix the path or the file's permissions`,
        { cause: err });
    }
  }

  private secret(path: string, key: string): string {
    return readSecret(path, `plugins.${PLUGIN_NAME}.${key}`);
  }
}
