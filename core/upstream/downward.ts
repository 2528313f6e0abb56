// Traffic that flows DOWN through a child gateway. For every identity connected here (a device on a head, or
// a grandchild's identity arriving on-behalf-of), the upstream connection holds the links that identity
// would hold at the parent itself (C2D, methods, twin), carrying its auth chain. The parent's hub therefore
// routes methods, C2D and desired patches to this gateway, which hands them to its own hub: layer by layer
// down to the device's head. Results (method responses, C2D settlements) go back on the same links.
import { randomUUID } from "node:crypto";
import type { Connection, Delivery } from "rhea";
import type { TwinDocument, TwinParent } from "../hub/twin-sync.js";
import type { C2DOutcome, DeviceLink, MethodRequest, MethodResult, TwinProperties } from "../hub/types.js";
import type { Identities } from "../identity/types.js";
import type { Logger } from "../log.js";
import type { IdentityId, Message } from "../message.js";
import { fromAmqpMessage, STRATA_ANNOTATIONS, type AmqpMessage } from "./convert.js";
import { IdentityDownlinks, type DownKind } from "./identity-links.js";

/** What the downward side needs from the hub (CoreHub implements it). */
export interface DownwardHub {
  watchLinks(listener: (id: IdentityId) => void): () => void;
  linkOf(id: IdentityId): DeviceLink | undefined;
  connectedIds(): IdentityId[];
  invokeMethod(id: IdentityId, request: MethodRequest): Promise<MethodResult>;
  deliverC2DNow(id: IdentityId, message: Message): Promise<C2DOutcome>;
  applyDesired(id: IdentityId, patch: TwinProperties): Promise<void>;
  reconcileTwin(id: IdentityId, parent: TwinDocument, notify: boolean): Promise<void>;
  flushReported(id?: IdentityId): Promise<number | undefined>;
  setTwinParent(parent: TwinParent | undefined): void;
}

export interface DownwardOptions {
  self: string;
  hub: DownwardHub;
  /** With `on`, an identity that reaches this gateway's scope after its local link attached is mirrored then. */
  identities: Pick<Identities, "authChain"> & Partial<Pick<Identities, "on">>;
  logger: Logger;
  /** How long a twin request to the parent may take. Default 10 s. */
  twinTimeoutMs?: number;
}

const KINDS: readonly DownKind[] = ["c2d", "methods", "twin"];

export class DownwardLinks implements TwinParent {
  private connection: Connection | undefined;
  private readonly byId = new Map<IdentityId, IdentityDownlinks>();
  /** `${id}|${kind}` the parent closed: not reopened until the identity's local link changes or we reconnect. */
  private readonly refused = new Set<string>();
  private readonly seen = new Map<IdentityId, DeviceLink | undefined>();
  /** Twin requests in flight per identity (keeps an on-demand twin link open while used). */
  private readonly busy = new Map<IdentityId, number>();
  /** Identities whose desired notifications are subscribed at the parent (PUT sent on their twin link). */
  private readonly desiredOn = new Set<IdentityId>();
  private unwatch: (() => void) | undefined;
  private unwatchIdentities: (() => void) | undefined;
  stats = { methods: 0, c2d: 0, desired: 0, reportedSynced: 0 };

  constructor(private readonly opts: DownwardOptions) {}

  start(): void {
    this.unwatch ??= this.opts.hub.watchLinks((id) => this.sync(id));
    // A link attached before its identity was in scope (a module whose identity scope sync brings down later,
    // such as {self}/$edgeAgent after a deployment at the root) had no auth chain then: mirror it now.
    this.unwatchIdentities ??= this.opts.identities.on?.((e) => {
      if (e.type !== "changed" || !this.opts.hub.linkOf(e.record.id)) return;
      for (const kind of KINDS) this.refused.delete(`${e.record.id}|${kind}`);
      this.sync(e.record.id);
    });
    this.opts.hub.setTwinParent(this);
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    this.unwatchIdentities?.();
    this.unwatchIdentities = undefined;
    this.opts.hub.setTwinParent(undefined);
    this.disconnected();
  }

  /** The upstream connection is up (authenticated): mirror every identity connected here, sync twins. */
  connected(connection: Connection): void {
    this.connection = connection;
    this.refused.clear();
    for (const id of this.opts.hub.connectedIds()) this.sync(id);
    this.opts.hub.flushReported().catch((err: unknown) => this.opts.logger.warn({ err }, "reported patches not synced after reconnect"));
  }

  /** The connection is gone: its links with it. */
  disconnected(): void {
    this.connection = undefined;
    for (const dl of this.byId.values()) dl.abandon();
    this.byId.clear();
    this.desiredOn.clear();
  }

  /** Identities with links for downward traffic open at the parent. */
  mirrored(): IdentityId[] {
    return [...this.byId.keys()];
  }

  /** Opens or closes `id`'s links at the parent to match what its link here accepts. */
  sync(id: IdentityId): void {
    if (id === this.opts.self) return;
    const link = this.opts.hub.linkOf(id);
    if (this.seen.get(id) !== link) {
      for (const kind of KINDS) this.refused.delete(`${id}|${kind}`);
      if (link) this.seen.set(id, link);
      else this.seen.delete(id);
    }
    const connection = this.connection;
    if (!connection) return;
    const want: Record<DownKind, boolean> = {
      c2d: link?.accepts("c2d") ?? false,
      methods: link?.accepts("methods") ?? false,
      twin: link?.accepts("desired") ?? false,
    };
    let dl = this.byId.get(id);
    if (!want.c2d && !want.methods && !want.twin) {
      this.desiredOn.delete(id);
      if (dl && !this.busy.get(id)) {
        dl.close();
        this.byId.delete(id);
        this.opts.logger.debug({ identity: id }, "downward links closed");
      } else if (dl) {
        dl.closeKind("c2d");
        dl.closeKind("methods");
      }
      return;
    }
    const opened = this.ensure(id);
    if (!opened) return;
    dl = opened;
    for (const kind of KINDS) {
      if (want[kind] && !this.refused.has(`${id}|${kind}`)) {
        if (!dl.has(kind)) dl.open(kind);
        if (kind === "twin" && !this.desiredOn.has(id)) {
          this.desiredOn.add(id);
          void this.subscribeDesired(id, dl);
        }
      } else if (!want[kind]) {
        if (kind === "twin") this.desiredOn.delete(id);
        if (dl.has(kind) && !(kind === "twin" && this.busy.get(id))) dl.closeKind(kind);
      }
    }
  }

  private ensure(id: IdentityId): IdentityDownlinks | undefined {
    const connection = this.connection;
    if (!connection) return undefined;
    const existing = this.byId.get(id);
    if (existing && !existing.isClosed) return existing;
    const chain = this.opts.identities.authChain(id);
    if (!chain) return undefined; // not in this gateway's scope (any more)
    const dl = new IdentityDownlinks(connection, id, chain, {
      onC2D: (message, delivery) => void this.onC2D(id, message, delivery),
      onMethod: (request) => void this.onMethod(id, request),
      onDesired: (patch) => void this.onDesired(id, patch),
      onRefused: (kind, error) => {
        this.refused.add(`${id}|${kind}`);
        if (kind === "twin") this.desiredOn.delete(id);
        this.opts.logger.info({ identity: id, kind, err: error }, "parent closed a downward link");
      },
    });
    this.byId.set(id, dl);
    this.desiredOn.delete(id);
    this.opts.logger.debug({ identity: id, chain }, "downward links opened");
    return dl;
  }

  /** Desired notifications on, then what was missed while away, by version (the parent's twin is the truth). */
  private async subscribeDesired(id: IdentityId, dl: IdentityDownlinks): Promise<void> {
    const timeout = this.opts.twinTimeoutMs ?? 10_000;
    const answer = await dl.twinRequest("PUT", undefined, timeout);
    if (!answer || answer.status >= 300) {
      if (this.byId.get(id) === dl) this.desiredOn.delete(id);
      this.opts.logger.warn({ identity: id, status: answer?.status }, "desired notifications not subscribed at the parent");
      return;
    }
    const doc = await this.getTwin(id);
    if (doc) await this.opts.hub.reconcileTwin(id, doc, true).catch((err: unknown) => this.opts.logger.warn({ err, identity: id }, "twin reconciliation failed"));
  }

  private async onC2D(id: IdentityId, raw: Record<string, unknown>, delivery: Delivery): Promise<void> {
    this.stats.c2d++;
    let outcome: C2DOutcome;
    try {
      outcome = await this.opts.hub.deliverC2DNow(id, c2dMessage(raw));
    } catch (err) {
      this.opts.logger.warn({ err, identity: id }, "c2d from the parent not delivered");
      outcome = "abandoned";
    }
    // IoT Hub's mapping, as the parent's head reads it: accepted = complete, rejected = reject, released = abandon.
    if (outcome === "completed") delivery.accept();
    else if (outcome === "rejected") delivery.reject({ condition: "amqp:precondition-failed", description: "rejected by the device" });
    else delivery.release();
  }

  private async onMethod(id: IdentityId, req: { rid: unknown; methodName: string; payload: unknown; timeoutSecs?: number }): Promise<void> {
    this.stats.methods++;
    let result: MethodResult;
    try {
      result = await this.opts.hub.invokeMethod(id, { methodName: req.methodName, payload: req.payload, responseTimeoutInSeconds: req.timeoutSecs ?? 30 });
    } catch (err) {
      this.opts.logger.warn({ err, identity: id, method: req.methodName }, "method from the parent failed here");
      result = { status: 500, payload: { errorCode: 500001, message: "the method failed on a gateway below; see its log" } };
    }
    this.byId.get(id)?.sendMethodResponse(req.rid, result.status, result.payload);
  }

  private async onDesired(id: IdentityId, patch: Record<string, unknown>): Promise<void> {
    this.stats.desired++;
    try {
      await this.opts.hub.applyDesired(id, patch as TwinProperties);
    } catch (err) {
      this.opts.logger.warn({ err, identity: id }, "desired patch from the parent not applied");
    }
  }

  // ---- TwinParent: twin reads and reported patches go through the parent -----------------------------------

  async getTwin(id: IdentityId): Promise<TwinDocument | undefined> {
    const answer = await this.twinCall(id, "GET", undefined);
    if (!answer || answer.status !== 200 || !answer.body || typeof answer.body !== "object") return undefined;
    const body = answer.body as { desired?: TwinProperties; reported?: TwinProperties };
    if (!body.desired || !body.reported) return undefined;
    return { desired: body.desired, reported: body.reported, ...(answer.version !== undefined ? { version: answer.version } : {}) };
  }

  async patchReported(id: IdentityId, patch: Record<string, unknown>): Promise<number | undefined> {
    const answer = await this.twinCall(id, "PATCH", patch);
    if (!answer || answer.status < 200 || answer.status >= 300) return undefined;
    this.stats.reportedSynced++;
    return answer.version;
  }

  private async twinCall(id: IdentityId, op: "GET" | "PATCH", body: unknown) {
    if (!this.connection || this.refused.has(`${id}|twin`)) return undefined;
    const dl = this.ensure(id);
    if (!dl) return undefined;
    this.busy.set(id, (this.busy.get(id) ?? 0) + 1);
    try {
      return await dl.twinRequest(op, body, this.opts.twinTimeoutMs ?? 10_000);
    } finally {
      const n = (this.busy.get(id) ?? 1) - 1;
      if (n > 0) this.busy.set(id, n);
      else {
        this.busy.delete(id);
        this.sync(id); // an on-demand twin link closes again when nothing here needs it
      }
    }
  }
}

/** The C2D message as the parent sent it; the Strata id survives when the parent is a Strata gateway. */
function c2dMessage(raw: Record<string, unknown>): Message {
  const amqp = raw as AmqpMessage;
  const ann = amqp.message_annotations ?? {};
  const withId = ann[STRATA_ANNOTATIONS.id] === undefined
    ? { ...amqp, message_annotations: { ...ann, [STRATA_ANNOTATIONS.id]: `c2d:${randomUUID()}` } }
    : amqp;
  const message = fromAmqpMessage(withId)!;
  return { ...message, source: message.source || "$service" };
}
