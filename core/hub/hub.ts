import { StrataError } from "../errors.js";
import type { Identities, IdentityEvent, IdentityRecord, Principal } from "../identity/types.js";
import type { Logger } from "../log.js";
import type { IdentityId, InboundMessage, Message } from "../message.js";
import type { Endpoint, Router } from "../router/types.js";
import type { EnqueueItem, EnqueueResult, Lease, Store } from "../store/types.js";
import { Drain } from "./drain.js";
import { c2dQueue, FEEDBACK, inputQueue, parseInputQueue, sinkQueue, UPSTREAM } from "./queues.js";
import { mergePatch, TwinStore, versioned } from "./twins.js";
import { diffProperties, PendingReported, type TwinDocument, type TwinParent } from "./twin-sync.js";
import type {
  Attachment, C2DOutcome, DeliveryOutcome, DeviceLink, EndpointConsumer, ForwardHandler, Hub, IngestResult, MethodRequest, MethodResult,
  Twin, TwinProperties,
} from "./types.js";

export interface HubOptions {
  /** This gateway's device id: the origin of the messages it stamps. */
  self: string;
  /** The root has no parent: its `$upstream` fans out to the northbound sinks. */
  isRoot: boolean;
  store: Store;
  router: Router;
  identities: Identities;
  logger: Logger;
  /** Default message TTL in seconds (IoT Edge's store-and-forward default is 7200). */
  defaultTtlSecs?: number;
  /** C2D messages live this long unless the sender set an expiry (IoT Hub's default is one hour). */
  c2dTtlSecs?: number;
  /** Identities this gateway serves directly at once (IoT Edge's MaxConnectedClients, 100). */
  maxClients?: number;
  /** A C2D message abandoned this many times is dead-lettered (IoT Hub's max delivery count, 10). */
  c2dMaxDeliveries?: number;
  now?: () => number;
  /**
   * Hold `ingest`/`forward` until `markReady()`: the gateway starts with the hub paused so that no message is
   * routed before every sink plugin has registered (a message routed at the root before its sinks exist
   * would wait on `$upstream` forever). Held callers simply wait — the device sees no ack yet.
   */
  startPaused?: boolean;
}

interface Connected {
  link: DeviceLink;
  drains: Map<string, Drain>;
}

export interface HubStats {
  ingested: number;
  forwarded: number;
  duplicates: number;
  unrouted: number;
  connected: number;
  methodCalls: number;
  methodTimeouts: number;
}

/**
 * The hub: every message, twin change and method call passes through here. Messages are stamped, routed and
 * made durable before a head may acknowledge them; endpoint queues are drained by `Drain` loops, one per
 * endpoint (consumers: the upstream link, sinks) and one per connected device and kind (C2D, module inputs).
 */
export class CoreHub implements Hub {
  private readonly links = new Map<IdentityId, Connected>();
  private readonly consumers = new Map<string, Drain>();
  private readonly sinks = new Set<string>();
  private readonly forwardHandlers: ForwardHandler[] = [];
  private readonly twins: TwinStore;
  private readonly pendingReported: PendingReported;
  private readonly linkWatchers = new Set<(id: IdentityId) => void>();
  private twinParent: TwinParent | undefined;
  private readonly now: () => number;
  private readonly unsubscribe: () => void;
  private warnedNoSink = false;
  private ready: Promise<void> | undefined;
  private release: (() => void) | undefined;
  private stopped = false;
  private readonly counters: Omit<HubStats, "connected"> = {
    ingested: 0, forwarded: 0, duplicates: 0, unrouted: 0, methodCalls: 0, methodTimeouts: 0,
  };

  constructor(private readonly opts: HubOptions) {
    this.twins = new TwinStore(opts.store.kv<Twin>("twins"));
    this.pendingReported = new PendingReported(opts.store.kv("twin-pending"));
    this.now = opts.now ?? Date.now;
    this.unsubscribe = opts.identities.on((e) => this.onIdentityEvent(e));
    if (opts.startPaused) this.ready = new Promise<void>((resolve) => { this.release = resolve; });
  }

  /** Lets held and new messages through (see `startPaused`). Idempotent. */
  markReady(): void {
    this.release?.();
    this.ready = undefined;
    this.release = undefined;
  }

  // ---- messages up ---------------------------------------------------------------------------------

  async ingest(principal: Principal, inbound: InboundMessage): Promise<IngestResult> {
    if (this.ready) await this.ready;
    const now = this.now();
    const systemProperties = { ...inbound.systemProperties };
    systemProperties.connectionDeviceId = principal.deviceId;
    if (principal.moduleId) systemProperties.connectionModuleId = principal.moduleId;
    else delete systemProperties.connectionModuleId;
    const message: Message = {
      id: this.opts.store.nextId(),
      origin: this.opts.self,
      source: principal.id,
      enqueuedTime: now,
      deadline: now,
      priority: 0,
      body: inbound.body,
      properties: inbound.properties,
      systemProperties,
    };
    const endpoints = this.route(message, true);
    // A local device is its own fairness share.
    const result = await this.enqueue(message, endpoints, principal.id);
    this.counters.ingested++;
    return result;
  }

  async forward(principal: Principal, message: Message): Promise<IngestResult> {
    return (await this.forwardGroups([[principal, [message]]]))[0]![0]!;
  }

  /**
   * Messages a child forwarded together (one batched transfer), grouped by the principal each came for — the
   * sources of a version 3 batch each have their own: every message is offered to the forward handlers, routed,
   * and the rest made durable in one store write (Store.enqueueMany) rather than one per message or per source
   * (20 leaves' 60 messages were 60 writes, promise chains and wake-ups). Results per group, in order.
   */
  async forwardGroups(groups: readonly (readonly [Principal, readonly Message[]])[]): Promise<IngestResult[][]> {
    for (const [principal, messages] of groups) {
      for (const m of messages) {
        if (m.source !== principal.id) {
          throw new StrataError("STRATA_HUB_SOURCE_MISMATCH", `message ${m.id} claims source ${m.source} but arrived for ${principal.id}`);
        }
      }
    }
    if (this.ready) await this.ready;
    const results = groups.map(([, messages]) => new Array<IngestResult>(messages.length));
    const items: EnqueueItem[] = [];
    const at: [number, number][] = [];
    const taken: Promise<void>[] = [];
    for (let g = 0; g < groups.length; g++) {
      const [principal, messages] = groups[g]!;
      const out = results[g]!;
      // The fairness share is the first hop below this gateway: the child whose link carried it (the actor of
      // an on-behalf-of principal), so a child with many leaves gets one share, not one per leaf.
      const options = { share: fairnessShare(principal), group: fairnessGroup(principal) };
      for (let i = 0; i < messages.length; i++) {
        const message = messages[i]!;
        const handled = this.offerToHandlers(principal, message);
        if (handled) {
          taken.push(handled.then((r) => { out[i] = r; }));
          continue;
        }
        const copy: Message = { ...message };
        const endpoints = this.route(copy, false);
        if (endpoints.length === 0) {
          out[i] = this.unrouted(copy);
          continue;
        }
        items.push({ message: copy, endpoints, options });
        at.push([g, i]);
      }
    }
    if (items.length) {
      // Awaited together with what the handlers took: whichever fails first fails the call, and the others'
      // rejections are still handled (Promise.all listens to all of them).
      const [stored] = await Promise.all([this.opts.store.enqueueMany(items), ...taken]) as [EnqueueResult[], ...unknown[]];
      for (let j = 0; j < items.length; j++) {
        const { message, endpoints } = items[j]!;
        const { duplicate } = stored[j]!;
        if (duplicate) this.counters.duplicates++;
        for (const q of endpoints) this.wakeInputDrain(q);
        const [g, i] = at[j]!;
        results[g]![i] = { id: message.id, duplicate, endpoints: endpoints as string[] };
      }
    } else if (taken.length) await Promise.all(taken);
    for (const [, messages] of groups) {
      this.counters.forwarded += messages.length;
      for (const h of this.forwardHandlers) if (h.accepted) for (const m of messages) h.accepted(m);
    }
    return results;
  }

  /**
   * The first forward handler that takes the message, and those after it if it answers nothing, then the
   * queues if none does; undefined (no promise, no tick) when no handler takes it — the common case.
   */
  private offerToHandlers(principal: Principal, message: Message): Promise<IngestResult> | undefined {
    for (let k = 0; k < this.forwardHandlers.length; k++) {
      const first = this.forwardHandlers[k]!.take?.(principal, message);
      if (!first) continue;
      return (async () => {
        let result = await first;
        for (let n = k + 1; !result && n < this.forwardHandlers.length; n++) result = await this.forwardHandlers[n]!.take?.(principal, message);
        if (result) return result;
        const copy: Message = { ...message };
        return this.enqueue(copy, this.route(copy, false), fairnessShare(principal), fairnessGroup(principal));
      })();
    }
    return undefined;
  }

  addForwardHandler(handler: ForwardHandler): () => void {
    this.forwardHandlers.push(handler);
    return () => {
      const i = this.forwardHandlers.indexOf(handler);
      if (i >= 0) this.forwardHandlers.splice(i, 1);
    };
  }

  /** Routes the message, sets its priority (and, at the origin, its deadline); returns queue names. */
  private route(message: Message, atOrigin: boolean): string[] {
    const matches = this.opts.router.match(message, "telemetry");
    if (matches.length === 0) return [];
    message.priority = Math.min(...matches.map((m) => m.priority));
    if (atOrigin) {
      const ttl = Math.min(...matches.map((m) => m.timeToLiveSecs ?? this.opts.defaultTtlSecs ?? 7200));
      message.deadline = message.enqueuedTime + ttl * 1000;
      const asked = Date.parse(message.systemProperties.expiryTimeUtc ?? "");
      if (Number.isFinite(asked) && asked < message.deadline) message.deadline = asked;
    }
    const queues = new Set<string>();
    for (const m of matches) for (const q of this.queuesFor(m.endpoint)) queues.add(q);
    return [...queues];
  }

  private queuesFor(endpoint: Endpoint): string[] {
    switch (endpoint.kind) {
      case "upstream":
        if (!this.opts.isRoot) return [UPSTREAM];
        if (this.sinks.size === 0) {
          if (!this.warnedNoSink) this.opts.logger.warn({}, "root has no northbound sink: $upstream messages stay queued");
          this.warnedNoSink = true;
          return [UPSTREAM];
        }
        return [...this.sinks].map(sinkQueue);
      case "module-input":
        return [inputQueue(`${endpoint.deviceId ?? this.opts.self}/${endpoint.moduleId}`, endpoint.input)];
      case "sink":
        return [sinkQueue(endpoint.name)];
    }
  }

  private async enqueue(message: Message, endpoints: string[], share: string, group?: string): Promise<IngestResult> {
    if (endpoints.length === 0) return this.unrouted(message);
    const { duplicate } = await this.opts.store.enqueue(message, endpoints, group === undefined ? { share } : { share, group });
    if (duplicate) this.counters.duplicates++;
    for (const q of endpoints) this.wakeInputDrain(q);
    return { id: message.id, duplicate, endpoints };
  }

  private unrouted(message: Message): IngestResult {
    this.counters.unrouted++;
    this.opts.logger.debug({ messageId: message.id, source: message.source }, "message matched no route");
    return { id: message.id, duplicate: false, endpoints: [] };
  }

  // ---- endpoint consumers ----------------------------------------------------------------------------

  consume(endpoint: string, consumer: EndpointConsumer): () => void {
    if (this.consumers.has(endpoint)) {
      throw new StrataError("STRATA_HUB_ENDPOINT_TAKEN", `endpoint ${endpoint} already has a consumer; each endpoint is drained by one`);
    }
    const drain = new Drain({
      queue: this.opts.store.queue(endpoint),
      deliver: (leases, signal, ctx) => consumer.deliver(leases, signal, ctx),
      batchSize: consumer.batchSize ?? 100,
      pipeline: consumer.pipeline ?? 1,
      logger: this.opts.logger,
    });
    this.consumers.set(endpoint, drain);
    if (!this.stopped) drain.start();
    return () => {
      if (this.consumers.get(endpoint) === drain) this.consumers.delete(endpoint);
      void drain.stop();
    };
  }

  addSink(name: string): void {
    this.sinks.add(name);
  }

  // ---- connected devices -----------------------------------------------------------------------------

  attach(link: DeviceLink): Attachment {
    const id = link.principal.id;
    const existing = this.links.get(id);
    if (existing) this.detach(id, existing, "replaced by a newer connection of the same identity");
    else if (this.countsAgainstLimit(link) && this.directCount() >= (this.opts.maxClients ?? 100)) {
      throw new StrataError(
        "STRATA_HUB_MAX_CLIENTS",
        `refusing ${id}: this gateway already serves ${this.directCount()} identities directly (max_clients = ${this.opts.maxClients ?? 100})`,
      );
    }
    const entry: Connected = { link, drains: new Map() };
    this.links.set(id, entry);
    this.refreshDrains(id, entry);
    this.linksChanged(id);
    return {
      changed: () => {
        if (this.links.get(id) !== entry) return;
        this.refreshDrains(id, entry);
        this.linksChanged(id);
      },
      detach: () => {
        if (this.links.get(id) === entry) this.detach(id, entry);
      },
    };
  }

  isConnected(id: IdentityId): boolean {
    return this.links.has(id);
  }

  private countsAgainstLimit(link: DeviceLink): boolean {
    return link.principal.method !== "on-behalf-of";
  }

  private directCount(): number {
    let n = 0;
    for (const { link } of this.links.values()) if (this.countsAgainstLimit(link)) n++;
    return n;
  }

  private detach(id: IdentityId, entry: Connected, closeReason?: string): void {
    this.links.delete(id);
    for (const d of entry.drains.values()) void d.stop();
    entry.drains.clear();
    if (closeReason) entry.link.close(closeReason);
    this.linksChanged(id);
  }

  // ---- downward traffic through a child gateway (core/upstream mirrors these links to the parent) ----------

  /**
   * Called with an identity whenever its link here attached, changed what it accepts, or went away; the
   * upstream link of a child opens or closes that identity's links at the parent to match. Returns the removal.
   */
  watchLinks(listener: (id: IdentityId) => void): () => void {
    this.linkWatchers.add(listener);
    return () => this.linkWatchers.delete(listener);
  }

  /** The link an identity holds here now, if any. */
  linkOf(id: IdentityId): DeviceLink | undefined {
    return this.links.get(id)?.link;
  }

  connectedIds(): IdentityId[] {
    return [...this.links.keys()];
  }

  private linksChanged(id: IdentityId): void {
    for (const listener of this.linkWatchers) {
      try {
        listener(id);
      } catch (err) {
        this.opts.logger.error({ err, identity: id }, "link watcher failed");
      }
    }
  }

  /**
   * A C2D message that came down from the parent, handed to the device now, not queued: the parent holds it
   * durably and retries, and the device's settlement travels back up. Not connected here → abandoned.
   */
  async deliverC2DNow(id: IdentityId, message: Message): Promise<C2DOutcome> {
    const link = this.links.get(id)?.link;
    if (!link || !link.accepts("c2d")) return "abandoned";
    return link.deliverC2D(message);
  }

  /** On a child: where twin reads and reported patches go first (the upstream link); undefined on the root. */
  setTwinParent(parent: TwinParent | undefined): void {
    this.twinParent = parent;
  }

  /**
   * A desired patch from the parent, with the root's `$version`: cached and passed to the device. A version
   * this layer already has is ignored (reconciliation and the live patch may both bring it).
   */
  async applyDesired(id: IdentityId, patch: TwinProperties): Promise<void> {
    let applied = false;
    await this.twins.update(id, (t) => {
      if (!(patch.$version > t.properties.desired.$version)) return;
      mergePatch(t.properties.desired, patch);
      t.properties.desired.$version = patch.$version;
      applied = true;
    });
    const link = this.links.get(id)?.link;
    if (applied && link?.accepts("desired")) link.desiredPatch(patch);
  }

  /**
   * Takes the parent's twin into this layer's cache. Reported patches still waiting to go up stay on top of
   * it. With `notify`, a desired state that differs from the cached one reaches the device as one patch (the
   * changes it missed while this gateway was cut off).
   */
  async reconcileTwin(id: IdentityId, parent: TwinDocument, notify: boolean): Promise<void> {
    const pending = await this.pendingReported.get(id);
    let missed: TwinProperties | undefined;
    await this.twins.update(id, (t) => {
      const cached = t.properties.desired;
      if (parent.desired.$version !== cached.$version) {
        const diff = diffProperties(cached, parent.desired);
        if (Object.keys(diff).length > 0) missed = versioned(diff, parent.desired.$version);
      }
      t.properties.desired = structuredClone(parent.desired);
      const reported = structuredClone(parent.reported);
      if (pending) mergePatch(reported, pending.patch);
      t.properties.reported = reported;
      if (parent.version !== undefined) t.version = parent.version - 1; // update() adds one
    });
    const link = this.links.get(id)?.link;
    if (notify && missed && link?.accepts("desired")) {
      this.opts.logger.info({ identity: id, version: missed.$version }, "desired properties reconciled with the parent");
      link.desiredPatch(missed);
    }
  }

  /**
   * Sends the reported patches waiting for `id` (all identities when omitted) to the parent, oldest merged
   * first; resolves with the parent's last reported `$version`, or undefined while it cannot be reached.
   */
  async flushReported(id?: IdentityId): Promise<number | undefined> {
    const parent = this.twinParent;
    if (!parent) return undefined;
    if (id === undefined) {
      for (const each of await this.pendingReported.ids()) await this.flushReported(each);
      return undefined;
    }
    for (let round = 0; round < 5; round++) {
      const pending = await this.pendingReported.get(id);
      if (!pending) return undefined;
      const version = await parent.patchReported(id, pending.patch);
      if (version === undefined) return undefined;
      if (await this.pendingReported.settle(id, pending.seq)) {
        await this.twins.update(id, (t) => {
          t.properties.reported.$version = version;
        });
        this.opts.logger.debug({ identity: id, version }, "reported properties synced to the parent");
        return version;
      }
    }
    return undefined;
  }

  /** Starts the drains a link now accepts: its C2D queue and its module-input queues. */
  private refreshDrains(id: IdentityId, entry: Connected): void {
    if (this.stopped) return;
    if (entry.link.accepts("c2d")) this.ensureDrain(entry, c2dQueue(id), (leases, signal) => this.deliverC2D(entry.link, leases, signal), 10);
    if (entry.link.accepts("inputs")) {
      for (const q of Object.keys(this.opts.store.stats().queues)) {
        const parsed = parseInputQueue(q);
        if (parsed && parsed.target === id) this.ensureInputDrain(entry, q, parsed.input);
      }
    }
  }

  private wakeInputDrain(queue: string): void {
    const parsed = parseInputQueue(queue);
    if (!parsed) return;
    const entry = this.links.get(parsed.target);
    if (entry?.link.accepts("inputs")) this.ensureInputDrain(entry, queue, parsed.input);
  }

  private ensureInputDrain(entry: Connected, queue: string, input: string): void {
    this.ensureDrain(entry, queue, (leases, signal) => this.deliverInputs(entry.link, input, leases, signal), 10);
  }

  private ensureDrain(entry: Connected, queue: string, deliver: (l: readonly Lease[], s: AbortSignal) => Promise<DeliveryOutcome[]>, batch: number): void {
    if (entry.drains.has(queue)) return;
    const drain = new Drain({
      queue: this.opts.store.queue(queue),
      deliver,
      batchSize: batch,
      logger: this.opts.logger,
      maxAttempts: queue.startsWith("c2d:") ? (this.opts.c2dMaxDeliveries ?? 10) : undefined,
    });
    entry.drains.set(queue, drain);
    drain.start();
  }

  private async deliverC2D(link: DeviceLink, leases: readonly Lease[], signal: AbortSignal): Promise<DeliveryOutcome[]> {
    const maxDeliveries = this.opts.c2dMaxDeliveries ?? 10;
    return Promise.all(leases.map(async (lease): Promise<DeliveryOutcome> => {
      const outcome = await untilAborted(link.deliverC2D(lease.message), signal);
      if (outcome === undefined) return "retry";
      if (outcome === "completed") {
        await this.feedback(link.principal.id, lease.message, "Success");
        return "delivered";
      }
      if (outcome === "rejected") {
        await this.feedback(link.principal.id, lease.message, "Rejected");
        return { deadLetter: "rejected by the device" };
      }
      if (lease.attempts + 1 >= maxDeliveries) await this.feedback(link.principal.id, lease.message, "DeliveryCountExceeded");
      return "retry";
    }));
  }

  /**
   * A C2D feedback record (IoT Hub's shape) queued durably on `$feedback` when the sender asked for it with
   * `ack` = full, positive (success only) or negative (failures only). The service side drains that queue.
   */
  private async feedback(deviceId: IdentityId, c2d: Message, statusCode: "Success" | "Rejected" | "DeliveryCountExceeded" | "Expired"): Promise<void> {
    const ack = c2d.systemProperties.ack;
    const wanted = ack === "full" || (ack === "positive" && statusCode === "Success") || (ack === "negative" && statusCode !== "Success");
    if (!wanted) return;
    const now = this.now();
    const record = {
      originalMessageId: c2d.systemProperties.messageId ?? c2d.id,
      deviceId,
      deviceGenerationId: "",
      statusCode,
      description: statusCode,
      enqueuedTimeUtc: new Date(now).toISOString(),
    };
    const message: Message = {
      id: this.opts.store.nextId(), origin: this.opts.self, source: "$service", enqueuedTime: now,
      deadline: now + (this.opts.c2dTtlSecs ?? 3600) * 1000, priority: 0,
      body: Buffer.from(JSON.stringify(record)), properties: {},
      systemProperties: { contentType: "application/vnd.microsoft.iothub.feedback.json", contentEncoding: "utf-8" },
    };
    await this.opts.store.enqueue(message, [FEEDBACK]);
  }

  private async deliverInputs(link: DeviceLink, input: string, leases: readonly Lease[], signal: AbortSignal): Promise<DeliveryOutcome[]> {
    return Promise.all(leases.map(async (lease): Promise<DeliveryOutcome> => {
      const done = await untilAborted(link.deliverInput(input, lease.message).then(() => true), signal);
      return done ? "delivered" : "retry";
    }));
  }

  private onIdentityEvent(e: IdentityEvent): void {
    // IoT Hub gives a re-created identity a fresh twin.
    if (e.type === "removed") {
      this.twins.remove(e.record.id).catch((err: unknown) => this.opts.logger.warn({ err, identity: e.record.id }, "twin of removed identity not deleted"));
    }
    const revoked = e.type === "removed" || e.record.status === "disabled" || credentialsChanged(e.previous, e.record);
    if (!revoked) return;
    const reason = e.type === "removed" ? "identity removed" : e.record.status === "disabled" ? "identity disabled" : "credentials changed";
    for (const [id, entry] of [...this.links]) {
      if (id === e.record.id || entry.link.principal.actor === e.record.id) {
        this.opts.logger.info({ identity: id, reason }, "disconnecting revoked identity");
        this.detach(id, entry, reason);
      }
    }
  }

  // ---- twins -------------------------------------------------------------------------------------------

  /** On a child the parent's twin is fetched (and cached) when it can be; the cache answers while offline. */
  async getTwin(id: IdentityId): Promise<Twin> {
    const parent = id === this.opts.self ? undefined : this.twinParent;
    if (parent) {
      const fresh = await parent.getTwin(id).catch((err: unknown) => {
        this.opts.logger.debug({ err, identity: id }, "twin not read from the parent; answering from the cache");
        return undefined;
      });
      if (fresh) await this.reconcileTwin(id, fresh, false);
    }
    return this.twins.get(id);
  }

  /**
   * On a child the patch is cached, kept durably until the parent has it and sent up at once when connected
   * (the answer is then the parent's version); while cut off it answers with the cache's version and the patch
   * goes up on reconnect.
   */
  async patchReported(id: IdentityId, patch: Record<string, unknown>): Promise<number> {
    const twin = await this.twins.update(id, (t) => {
      mergePatch(t.properties.reported, patch);
      t.properties.reported.$version += 1;
    });
    if (!this.twinParent || id === this.opts.self) return twin.properties.reported.$version;
    await this.pendingReported.add(id, patch);
    const synced = await this.flushReported(id).catch((err: unknown) => {
      this.opts.logger.warn({ err, identity: id }, "reported patch not synced; kept for the next connection");
      return undefined;
    });
    return synced ?? twin.properties.reported.$version;
  }

  async patchDesired(id: IdentityId, patch: Record<string, unknown>, tags?: Record<string, unknown>): Promise<Twin> {
    const twin = await this.twins.update(id, (t) => {
      mergePatch(t.properties.desired, patch);
      t.properties.desired.$version += 1;
      if (tags) mergePatch(t.tags, tags);
    });
    const link = this.links.get(id)?.link;
    if (link?.accepts("desired") && Object.keys(patch).length > 0) {
      link.desiredPatch(versioned(patch, twin.properties.desired.$version));
    }
    return twin;
  }

  // ---- methods and C2D ---------------------------------------------------------------------------------

  async invokeMethod(id: IdentityId, request: MethodRequest): Promise<MethodResult> {
    this.counters.methodCalls++;
    const link = this.links.get(id)?.link;
    if (!link || !link.accepts("methods")) {
      return { status: 404, payload: { errorCode: 404103, message: `${id} is not connected or has not subscribed to direct methods` } };
    }
    const timeoutMs = Math.max(1, request.responseTimeoutInSeconds || 30) * 1000;
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<MethodResult>((resolve) => {
      timer = setTimeout(() => {
        this.counters.methodTimeouts++;
        // Resolve before aborting: the link answers an abort with a bare 504 in the same tick, and the race
        // must return Strata's own timeout result (its error code tells the service API what happened).
        resolve({ status: 504, payload: { errorCode: 504101, message: `${id} did not answer ${request.methodName} within ${timeoutMs / 1000} s` } });
        abort.abort();
      }, timeoutMs);
    });
    try {
      return await Promise.race([link.invokeMethod(request, abort.signal), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  async sendC2D(id: IdentityId, inbound: InboundMessage): Promise<{ id: string }> {
    const now = this.now();
    const asked = Date.parse(inbound.systemProperties.expiryTimeUtc ?? "");
    const message: Message = {
      id: this.opts.store.nextId(),
      origin: this.opts.self,
      source: "$service",
      enqueuedTime: now,
      deadline: Number.isFinite(asked) ? asked : now + (this.opts.c2dTtlSecs ?? 3600) * 1000,
      priority: 0,
      body: inbound.body,
      properties: inbound.properties,
      systemProperties: { ...inbound.systemProperties, to: inbound.systemProperties.to ?? `/devices/${id}/messages/devicebound` },
    };
    await this.opts.store.enqueue(message, [c2dQueue(id)]);
    return { id: message.id };
  }

  // ---- lifecycle ----------------------------------------------------------------------------------------

  stats(): HubStats {
    return { ...this.counters, connected: this.links.size };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    const stops: Promise<void>[] = [];
    for (const [id, entry] of [...this.links]) {
      this.detach(id, entry, "gateway shutting down");
    }
    for (const d of this.consumers.values()) stops.push(d.stop());
    this.consumers.clear();
    await Promise.all(stops);
  }
}

/** The promise's value, or undefined once the signal aborts (the device went away mid-delivery). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => { signal.removeEventListener("abort", onAbort); resolve(v); },
      (e: unknown) => { signal.removeEventListener("abort", onAbort); if (signal.aborted) resolve(undefined); else reject(e); },
    );
  });
}

/** The first hop below this gateway for a forwarded message: the acting child gateway, or the sender itself. */
export function fairnessShare(principal: Principal): string {
  if (principal.actor) return principal.actor;
  const chain = principal.authChain;
  // The chain runs target first, actor last: its last element is the hop that reached this gateway.
  if (chain && chain.length > 1) return chain[chain.length - 1]!;
  return principal.id;
}

/**
 * The group inside the share: the hop below the share on the message's way up (the chain's next-to-last
 * element), or the source itself when the share's gateway serves it directly. See EnqueueOptions.group.
 */
export function fairnessGroup(principal: Principal): string | undefined {
  const chain = principal.authChain;
  if (!chain || chain.length < 3) return undefined;
  return chain[chain.length - 2];
}

function credentialsChanged(before: IdentityRecord | undefined, after: IdentityRecord): boolean {
  return before !== undefined && JSON.stringify(before.auth) !== JSON.stringify(after.auth);
}
