import { randomUUID } from "node:crypto";
import type { Receiver } from "rhea";
import type {
  Attachment, C2DOutcome, DeviceLink, Logger, Message, MethodRequest, MethodResult, Principal, TwinProperties,
} from "../../core/index.js";
import { amqpFromMessage, jsonBody } from "./convert.js";
import type { OutboundLink } from "./outbound.js";

export const METHOD_NAME_PROPERTY = "IoThub-methodname";
export const METHOD_STATUS_PROPERTY = "IoThub-status";
/** Method requests to a gateway acting for the device carry the caller's timeout (seconds); core reads it. */
export const METHOD_TIMEOUT_ANNOTATION = "x-opt-strata-method-timeout";

/** The AMQP links one identity holds on one connection; the hub sees them as one DeviceLink. */
export class AmqpDeviceLink implements DeviceLink {
  readonly head = "amqp";
  c2d: OutboundLink | undefined;
  inputs: OutboundLink | undefined;
  twin: OutboundLink | undefined;
  methods: OutboundLink | undefined;
  /** Receivers (client senders) of this identity: telemetry, twin requests, method responses. */
  readonly receivers = new Set<Receiver>();
  /** Set by a twin PUT on `/notifications/twin/properties/desired`, cleared by DELETE. */
  desiredSubscribed = false;
  attachment: Attachment | undefined;
  private readonly methodCalls = new Map<string, (r: MethodResult) => void>();
  private closedReason: string | undefined;

  constructor(
    public principal: Principal,
    private readonly log: Logger,
    /** Detaches every link of this identity with the given error (the connection stays up). */
    private readonly detachAll: (condition: string, description: string) => void,
  ) {}

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  accepts(kind: "c2d" | "inputs" | "desired" | "methods"): boolean {
    if (this.closed) return false;
    switch (kind) {
      case "c2d":
        return open(this.c2d);
      case "inputs":
        return open(this.inputs);
      case "desired":
        return open(this.twin) && this.desiredSubscribed;
      case "methods":
        return open(this.methods);
    }
  }

  changed(): void {
    if (!this.closed) this.attachment?.changed();
  }

  /** True when no link of this identity is left on the connection. */
  empty(): boolean {
    return !open(this.c2d) && !open(this.inputs) && !open(this.twin) && !open(this.methods) && this.receivers.size === 0;
  }

  async deliverC2D(message: Message): Promise<C2DOutcome> {
    const link = this.c2d;
    if (!link || link.closed) return "abandoned";
    // IoT Hub: accepted = complete, rejected = reject, released (or modified) = abandon.
    // A gateway acting for the device gets Strata's annotations too (the message id survives every hop).
    const outcome = await link.send(amqpFromMessage(message, { strata: this.principal.method === "on-behalf-of" }));
    if (outcome === "accepted") return "completed";
    if (outcome === "rejected") return "rejected";
    return "abandoned";
  }

  async deliverInput(input: string, message: Message): Promise<void> {
    const link = this.inputs;
    if (!link || link.closed) throw new Error(`${this.principal.id} has no input link open`);
    const outcome = await link.send(amqpFromMessage(message, { inputName: input }));
    if (outcome !== "accepted") throw new Error(`${this.principal.id} settled input ${input} as ${outcome}`);
  }

  desiredPatch(patch: TwinProperties): void {
    if (!this.accepts("desired")) return;
    // A desired patch is the one twin message without a correlation id (the SDK tells them apart by that).
    this.twin?.post({ body: jsonBody(patch), message_annotations: { version: patch.$version } });
  }

  invokeMethod(request: MethodRequest, signal: AbortSignal): Promise<MethodResult> {
    const link = this.methods;
    if (!link || link.closed || this.closed) return Promise.resolve(notConnected(this.principal.id));
    const rid = randomUUID();
    return new Promise<MethodResult>((resolve) => {
      const finish = (result: MethodResult): void => {
        this.methodCalls.delete(rid);
        signal.removeEventListener("abort", onAbort);
        resolve(result);
      };
      const onAbort = (): void => finish({ status: 504, payload: null });
      signal.addEventListener("abort", onAbort, { once: true });
      this.methodCalls.set(rid, finish);
      link.send({
        correlation_id: rid,
        application_properties: { [METHOD_NAME_PROPERTY]: request.methodName },
        // A gateway below passes the caller's timeout on to its own hub (core/upstream/downward.ts).
        ...(this.principal.method === "on-behalf-of" ? { message_annotations: { [METHOD_TIMEOUT_ANNOTATION]: request.responseTimeoutInSeconds } } : {}),
        body: jsonBody(request.payload ?? null),
      }).then((outcome) => {
        if (outcome === "closed") finish(notConnected(this.principal.id));
      }, () => finish(notConnected(this.principal.id)));
    });
  }

  /** A method response from the device (correlation id = our request id). */
  methodResponse(rid: string, status: number, payload: unknown): boolean {
    const finish = this.methodCalls.get(rid.toLowerCase()) ?? this.methodCalls.get(rid);
    if (!finish) return false;
    finish({ status, payload });
    return true;
  }

  close(reason: string): void {
    if (this.closed) return;
    this.log.info({ identity: this.principal.id, reason }, "closing amqp links of identity");
    this.onClosed(reason);
    this.detachAll("amqp:link:detach-forced", reason);
  }

  /** Every link is gone (or the connection): settle pending calls and leave the hub. */
  onClosed(reason = "links closed"): void {
    if (this.closed) return;
    this.closedReason = reason;
    for (const finish of [...this.methodCalls.values()]) finish(notConnected(this.principal.id));
    for (const l of [this.c2d, this.inputs, this.twin, this.methods]) l?.markClosed();
    this.attachment?.detach();
  }
}

function open(link: OutboundLink | undefined): boolean {
  return link !== undefined && !link.closed;
}

function notConnected(id: string): MethodResult {
  return { status: 404, payload: { errorCode: 404103, message: `${id} disconnected before answering` } };
}
