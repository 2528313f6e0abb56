import type { Principal } from "../identity/types.js";
import type { IdentityId, InboundMessage, Message } from "../message.js";
import type { Lease } from "../store/types.js";
import type { DeliverContext } from "./drain.js";

export type { DeliverContext };

/** Twin properties as IoT Hub shows them: a JSON object with `$version`. */
export type TwinProperties = Record<string, unknown> & { $version: number };

export interface Twin {
  deviceId: string;
  moduleId?: string;
  /** Bumped on every change of either side; the twin's ETag. */
  version: number;
  tags: Record<string, unknown>;
  properties: { desired: TwinProperties; reported: TwinProperties };
}

export interface MethodRequest {
  methodName: string;
  payload: unknown;
  /** How long the device has to answer; IoT Hub's default is 30 s. */
  responseTimeoutInSeconds: number;
}

export interface MethodResult {
  /** The device's status, or 404 (not connected / not subscribed) or 504 (timed out) from Strata. */
  status: number;
  payload: unknown;
}

export type C2DOutcome = "completed" | "rejected" | "abandoned";

/**
 * What a head hands the hub for one connected identity: the ways to reach that device. A head implements
 * only what its protocol offers; the hub checks `accepts` before it uses one.
 */
export interface DeviceLink {
  readonly principal: Principal;
  /** The head that holds the connection: "mqtt", "amqp", "upstream", or a translation plugin's name. */
  readonly head: string;
  /** What the device has subscribed to (MQTT subscribes lazily; an AMQP link attach is a subscription). */
  accepts(kind: "c2d" | "inputs" | "desired" | "methods"): boolean;
  /** C2D: resolves with the device's settlement (MQTT PUBACK = completed). */
  deliverC2D(message: Message): Promise<C2DOutcome>;
  /** A module input: resolves when the module acknowledged it. */
  deliverInput(input: string, message: Message): Promise<void>;
  /** A desired-properties patch (`$version` inside). */
  desiredPatch(patch: TwinProperties): void;
  /** A direct method; the hub enforces the timeout. */
  invokeMethod(request: MethodRequest, signal: AbortSignal): Promise<MethodResult>;
  /** Disconnect the device (revoked, replaced by a newer connection, shutting down). */
  close(reason: string): void;
}

/** The handle a head keeps for an attached link; call `changed()` when the device subscribes to more. */
export interface Attachment {
  changed(): void;
  detach(): void;
}

/** Per message outcome from an endpoint consumer. */
export type DeliveryOutcome = "delivered" | "retry" | { deadLetter: string };

/**
 * Something that drains an endpoint queue: the upstream link (`$upstream` on a child), a northbound sink on
 * the root. The hub runs the loop (lease, deliver, ack / release with backoff / dead-letter); the consumer
 * only delivers.
 */
export interface EndpointConsumer {
  /**
   * Deliver a batch in order; return one outcome per lease, in order. With `pipeline` > 1 see
   * `DeliverContext.pipelined` for the one rule that keeps per-source order.
   */
  deliver(leases: readonly Lease[], signal: AbortSignal, ctx?: DeliverContext): Promise<DeliveryOutcome[]>;
  /** Most messages to hand over at once (default 100). */
  readonly batchSize?: number;
  /** Batches handed over before the oldest is settled (default 1: one round trip per batch). */
  readonly pipeline?: number;
}

export interface IngestResult {
  id: string;
  duplicate: boolean;
  /** Endpoint names it was queued to (empty: no route matched, counted as unrouted). */
  endpoints: string[];
}

/**
 * A system handler on the path of messages forwarded from child gateways (metrics state, trace watermarks).
 * `take` may handle a message itself — it is then not routed — by returning its result; `accepted` is told
 * of every forwarded message the hub accepted, taken or routed.
 */
export interface ForwardHandler {
  take?(principal: Principal, message: Message): Promise<IngestResult | undefined> | undefined;
  accepted?(message: Message): void;
}

/** The hub: the one place messages, twins and methods go through. Heads and the upstream link use it. */
export interface Hub {
  /**
   * A device's (or module's) message, authorised for `principal`. Resolves once it is durable in every
   * endpoint queue the routes pick — only then may the head acknowledge the device. Rejects with
   * STRATA_STORE_QUOTA (back-pressure: do not ack) or STRATA_HUB_* errors.
   */
  ingest(principal: Principal, message: InboundMessage): Promise<IngestResult>;
  /** A message that already has a Strata id (from a child gateway): kept as is, deduplicated by its id. */
  forward(principal: Principal, message: Message): Promise<IngestResult>;
  /** `forward` for one batched transfer's messages, by the principal each came for, in one durable write; results per group. */
  forwardGroups(groups: readonly (readonly [Principal, readonly Message[]])[]): Promise<IngestResult[][]>;
  /** Adds a system handler to the forward path (see ForwardHandler); returns its removal. */
  addForwardHandler(handler: ForwardHandler): () => void;

  /** A connected device. Replaces (closes) an earlier link of the same identity. May throw STRATA_HUB_MAX_CLIENTS. */
  attach(link: DeviceLink): Attachment;
  isConnected(id: IdentityId): boolean;

  getTwin(id: IdentityId): Promise<Twin>;
  /** The device's reported patch; resolves with the new reported `$version` once durable. */
  patchReported(id: IdentityId, patch: Record<string, unknown>): Promise<number>;
  /** The service's desired patch; notifies the device if connected. Resolves with the new twin. */
  patchDesired(id: IdentityId, patch: Record<string, unknown>, tags?: Record<string, unknown>): Promise<Twin>;

  invokeMethod(id: IdentityId, request: MethodRequest): Promise<MethodResult>;
  /** Queue a cloud-to-device message durably; delivered when the device is connected and subscribed. */
  sendC2D(id: IdentityId, message: InboundMessage): Promise<{ id: string }>;

  /** Register the consumer that drains an endpoint (`$upstream`, a sink). One consumer per endpoint. */
  consume(endpoint: string, consumer: EndpointConsumer): () => void;
  /** Names of the sinks the root's `$upstream` fans out to (registered by sink plugins via `addSink`). */
  addSink(name: string): void;
}
