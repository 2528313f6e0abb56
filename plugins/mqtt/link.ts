import type {
  Attachment, C2DOutcome, DeviceLink, Logger, Message, MethodRequest, MethodResult, Principal, TwinProperties,
} from "../../core/index.js";
import { encodePropertyBag } from "./property-bag.js";
import { c2dTopic, desiredPatchTopic, inputTopic, methodRequestTopic, type SubscriptionKind } from "./topics.js";

/** How a link reaches its device: one MQTT connection. */
export interface OutboundChannel {
  /** QoS 1 resolves on the device's PUBACK, QoS 0 once written; rejects when the connection goes away. */
  publish(topic: string, payload: Buffer, qos: 0 | 1): Promise<void>;
  /** Drop the connection (revoked, replaced, shutting down). */
  close(): void;
}

const KIND_OF: Record<"c2d" | "inputs" | "desired" | "methods", SubscriptionKind> = {
  c2d: "c2d", inputs: "inputs", desired: "desired", methods: "methods",
};

/**
 * One MQTT connection as the hub sees it (core/hub DeviceLink). What it accepts follows the device's
 * subscriptions, and only once the CONNACK is out (`markReady`): the hub starts delivering as soon as a
 * link accepts, and nothing may reach a device before its CONNACK.
 */
export class MqttLink implements DeviceLink {
  readonly head = "mqtt";
  /** Granted QoS per subscription kind. */
  private readonly subs = new Map<SubscriptionKind, 0 | 1>();
  private readonly methods = new Map<string, (result: MethodResult) => void>();
  /** Deliveries waiting for the device to subscribe again (it unsubscribed while the hub was delivering). */
  private waiters: Array<() => void> = [];
  private readonly abort = new AbortController();
  private ready = false;
  private closedReason: string | undefined;
  private nextRid = 1;
  attachment: Attachment | undefined;

  constructor(
    readonly principal: Principal,
    private readonly channel: OutboundChannel,
    private readonly log: Logger,
  ) {}

  /** Aborted when the connection is gone: cancels back-off waits of this connection's publishes. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  accepts(kind: "c2d" | "inputs" | "desired" | "methods"): boolean {
    return this.ready && !this.closed && this.subs.has(KIND_OF[kind]);
  }

  /** The CONNACK went out: from now on the hub may deliver. */
  markReady(): void {
    if (this.closed || this.ready) return;
    this.ready = true;
    this.changed();
  }

  subscribed(kind: SubscriptionKind, qos: 0 | 1): void {
    this.subs.set(kind, qos);
  }

  unsubscribed(kind: SubscriptionKind): void {
    this.subs.delete(kind);
  }

  /** Tell the hub what the device accepts now (after a SUBSCRIBE or UNSUBSCRIBE). */
  changed(): void {
    if (this.closed || !this.ready) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
    this.attachment?.changed();
  }

  async deliverC2D(message: Message): Promise<C2DOutcome> {
    if (!(await this.whenAccepting("c2d"))) return "abandoned";
    const topic = c2dTopic(this.principal.deviceId, encodePropertyBag(message));
    try {
      // [MQTT-4.3.2] QoS 1: the device's PUBACK is IoT Hub's "complete".
      await this.channel.publish(topic, message.body, this.subs.get("c2d") ?? 1);
      return "completed";
    } catch {
      return "abandoned";
    }
  }

  async deliverInput(input: string, message: Message): Promise<void> {
    if (!(await this.whenAccepting("inputs"))) throw new Error(`connection of ${this.principal.id} closed`);
    // The sender's output name means nothing to the receiver; `$.cdid`/`$.cmid` tell it who sent the message.
    const { outputName: _output, ...systemProperties } = message.systemProperties;
    const bag = encodePropertyBag({ properties: message.properties, systemProperties });
    const topic = inputTopic(this.principal.deviceId, this.principal.moduleId ?? "", input, bag);
    await this.channel.publish(topic, message.body, this.subs.get("inputs") ?? 1);
  }

  desiredPatch(patch: TwinProperties): void {
    if (!this.accepts("desired")) return;
    const body = Buffer.from(JSON.stringify(patch));
    this.channel.publish(desiredPatchTopic(patch.$version), body, this.subs.get("desired") ?? 0).catch((err: unknown) => {
      this.log.debug({ err, identity: this.principal.id }, "desired patch not delivered");
    });
  }

  invokeMethod(request: MethodRequest, signal: AbortSignal): Promise<MethodResult> {
    if (this.closed) return Promise.resolve(notConnected(this.principal.id));
    const rid = (this.nextRid++).toString(16);
    return new Promise<MethodResult>((resolve) => {
      const finish = (result: MethodResult): void => {
        this.methods.delete(rid);
        signal.removeEventListener("abort", onAbort);
        resolve(result);
      };
      // The hub answers 504 itself when it aborts; this only forgets the request.
      const onAbort = (): void => finish({ status: 504, payload: null });
      signal.addEventListener("abort", onAbort, { once: true });
      this.methods.set(rid, finish);
      const body = Buffer.from(JSON.stringify(request.payload ?? null));
      this.channel.publish(methodRequestTopic(request.methodName, rid), body, this.subs.get("methods") ?? 0).catch(() => {
        finish(notConnected(this.principal.id));
      });
    });
  }

  /** A `$iothub/methods/res/{status}/?$rid=` from the device. Unknown or late rids are ignored. */
  methodResponse(rid: string, status: number, body: Buffer): boolean {
    const finish = this.methods.get(rid);
    if (!finish) return false;
    finish({ status, payload: parsePayload(body) });
    return true;
  }

  close(reason: string): void {
    if (this.closed) return;
    this.log.info({ identity: this.principal.id, reason }, "closing mqtt connection");
    this.onClosed(reason);
    this.channel.close();
  }

  /** The connection is gone (either side closed it): settle everything pending and leave the hub. */
  onClosed(reason = "connection closed"): void {
    if (this.closed) return;
    this.closedReason = reason;
    this.abort.abort();
    for (const finish of [...this.methods.values()]) finish(notConnected(this.principal.id));
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
    this.attachment?.detach();
  }

  /** Subscriptions as kinds, for the session store. */
  subscriptionKinds(): Array<[SubscriptionKind, 0 | 1]> {
    return [...this.subs.entries()];
  }

  /** True once the device accepts `kind`, false when the connection closed first. */
  private async whenAccepting(kind: "c2d" | "inputs"): Promise<boolean> {
    while (!this.closed && !this.accepts(kind)) {
      await new Promise<void>((wake) => this.waiters.push(wake));
    }
    return !this.closed;
  }
}

function notConnected(id: string): MethodResult {
  return { status: 404, payload: { errorCode: 404103, message: `${id} disconnected before answering` } };
}

/** A method response body: JSON when it parses, else its text; empty is null. */
function parsePayload(body: Buffer): unknown {
  if (body.length === 0) return null;
  const text = body.toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
