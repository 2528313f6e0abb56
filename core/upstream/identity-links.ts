// The links one identity holds at the parent for traffic that flows DOWN (the same ones an IoT Hub device
// opens): C2D receiver, method receiver + response sender, twin sender + receiver. All carry the auth chain,
// so the parent's AMQP head attaches a DeviceLink for the identity "on behalf of" this gateway.
import { randomUUID } from "node:crypto";
import { message as rheaMessage, type Connection, type Delivery, type EventContext, type Receiver, type Sender, type Session } from "rhea";
import type { IdentityId } from "../message.js";
import { AUTH_CHAIN_PROPERTY, parseJsonBody } from "./convert.js";

export type DownKind = "c2d" | "methods" | "twin";

/** Method request annotation with the caller's timeout in seconds (set by the parent's head for gateways). */
export const METHOD_TIMEOUT_ANNOTATION = "x-opt-strata-method-timeout";
export const METHOD_NAME_PROPERTY = "IoThub-methodname";
export const METHOD_STATUS_PROPERTY = "IoThub-status";
const DESIRED_NOTIFICATIONS = "/notifications/twin/properties/desired";

export interface DownlinkHandlers {
  onC2D(message: Record<string, unknown>, delivery: Delivery): void;
  onMethod(request: { rid: unknown; methodName: string; payload: unknown; timeoutSecs?: number }): void;
  onDesired(patch: Record<string, unknown>): void;
  /** A link of this identity was closed by the parent (with its error, if any). */
  onRefused(kind: DownKind, error: unknown): void;
}

/** A twin response: the status annotation, the version annotation, the JSON body. */
export interface TwinResponse {
  status: number;
  version?: number;
  body: unknown;
}

export function addressOf(identity: IdentityId, kind: DownKind): string {
  const slash = identity.indexOf("/");
  const device = encodeURIComponent(slash < 0 ? identity : identity.slice(0, slash));
  const module = slash < 0 ? "" : `/modules/${encodeURIComponent(identity.slice(slash + 1))}`;
  const tail = kind === "c2d" ? "messages/devicebound" : kind === "methods" ? "methods/devicebound" : "twin";
  return `/devices/${device}${module}/${tail}`;
}

export class IdentityDownlinks {
  private readonly session: Session;
  private c2d: Receiver | undefined;
  private methodsIn: Receiver | undefined;
  private methodsOut: Sender | undefined;
  private twinOut: Sender | undefined;
  private twinIn: Receiver | undefined;
  private readonly twinCalls = new Map<string, (r: TwinResponse | undefined) => void>();
  private closed = false;

  constructor(
    connection: Connection,
    readonly identity: IdentityId,
    private readonly chain: readonly string[],
    private readonly handlers: DownlinkHandlers,
  ) {
    this.session = connection.create_session();
    this.session.begin();
  }

  has(kind: DownKind): boolean {
    if (kind === "c2d") return open(this.c2d);
    if (kind === "methods") return open(this.methodsIn) && open(this.methodsOut);
    return open(this.twinIn) && open(this.twinOut);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private linkOptions(kind: DownKind): Record<string, unknown> {
    const properties: Record<string, unknown> = { "com.microsoft:channel-correlation-id": `${kind}:${randomUUID()}` };
    if (this.chain.length > 1) properties[AUTH_CHAIN_PROPERTY] = this.chain.join(";");
    return { properties };
  }

  open(kind: DownKind): void {
    if (this.closed || this.has(kind)) return;
    const address = addressOf(this.identity, kind);
    if (kind === "c2d") {
      const r = this.session.attach_receiver({ source: { address }, autoaccept: false, credit_window: 10, ...this.linkOptions(kind) } as never);
      r.on("message", (ctx: EventContext) => this.handlers.onC2D(ctx.message as unknown as Record<string, unknown>, ctx.delivery!));
      this.watch(kind, r);
      this.c2d = r;
    } else if (kind === "methods") {
      const opts = this.linkOptions(kind);
      this.methodsOut = this.session.attach_sender({ target: { address }, autosettle: true, ...opts } as never);
      const r = this.session.attach_receiver({ source: { address }, credit_window: 50, ...opts } as never);
      r.on("message", (ctx: EventContext) => {
        const m = ctx.message as { correlation_id?: unknown; application_properties?: Record<string, unknown>; message_annotations?: Record<string, unknown>; body?: unknown };
        const timeout = Number(m.message_annotations?.[METHOD_TIMEOUT_ANNOTATION]);
        this.handlers.onMethod({
          rid: m.correlation_id,
          methodName: String(m.application_properties?.[METHOD_NAME_PROPERTY] ?? ""),
          payload: parseJsonBody(m.body),
          ...(Number.isFinite(timeout) && timeout > 0 ? { timeoutSecs: timeout } : {}),
        });
      });
      this.watch(kind, r);
      this.watch(kind, this.methodsOut);
      this.methodsIn = r;
    } else {
      const opts = this.linkOptions(kind);
      this.twinOut = this.session.attach_sender({ target: { address }, autosettle: true, ...opts } as never);
      const r = this.session.attach_receiver({ source: { address }, credit_window: 50, ...opts } as never);
      r.on("message", (ctx: EventContext) => this.onTwinMessage(ctx.message as unknown as Record<string, unknown>));
      this.watch(kind, r);
      this.watch(kind, this.twinOut);
      this.twinIn = r;
    }
  }

  /** Detaches the links of one kind (the device stopped accepting it here). */
  closeKind(kind: DownKind): void {
    const links = kind === "c2d" ? [this.c2d] : kind === "methods" ? [this.methodsIn, this.methodsOut] : [this.twinIn, this.twinOut];
    for (const l of links) closeQuietly(l);
    if (kind === "c2d") this.c2d = undefined;
    else if (kind === "methods") this.methodsIn = this.methodsOut = undefined;
    else {
      this.twinIn = this.twinOut = undefined;
      this.failTwinCalls();
    }
  }

  /** Every link and the session; pending twin calls end unanswered. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const kind of ["c2d", "methods", "twin"] as const) this.closeKind(kind);
    closeQuietly(this.session);
  }

  /** The parent's connection is gone: forget the links without writing to it. */
  abandon(): void {
    this.closed = true;
    this.failTwinCalls();
  }

  sendMethodResponse(rid: unknown, status: number, payload: unknown): void {
    if (!open(this.methodsOut)) return;
    this.methodsOut!.send({
      correlation_id: rid,
      application_properties: { [METHOD_STATUS_PROPERTY]: status },
      body: rheaMessage.data_section(Buffer.from(JSON.stringify(payload ?? null), "utf8")),
    } as never);
  }

  /** A twin request (GET, PATCH reported, PUT/DELETE desired notifications); resolves with the parent's answer. */
  twinRequest(operation: "GET" | "PATCH" | "PUT" | "DELETE", body: unknown, timeoutMs: number): Promise<TwinResponse | undefined> {
    this.open("twin");
    const out = this.twinOut;
    if (!out || this.closed) return Promise.resolve(undefined);
    const rid = randomUUID();
    const resource = operation === "PATCH" ? "/properties/reported" : operation === "GET" ? undefined : DESIRED_NOTIFICATIONS;
    return new Promise<TwinResponse | undefined>((resolve) => {
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      const finish = (r: TwinResponse | undefined) => {
        clearTimeout(timer);
        this.twinCalls.delete(rid);
        resolve(r);
      };
      this.twinCalls.set(rid, finish);
      out.send({
        correlation_id: rid,
        message_annotations: { operation, ...(resource ? { resource } : {}) },
        body: rheaMessage.data_section(Buffer.from(body === undefined ? "" : JSON.stringify(body), "utf8")),
      } as never);
    });
  }

  private onTwinMessage(m: Record<string, unknown>): void {
    const ann = (m["message_annotations"] ?? {}) as Record<string, unknown>;
    const cid = m["correlation_id"];
    if (cid === undefined || cid === null) {
      // A desired patch: the one twin message without a correlation id.
      const patch = parseJsonBody(m["body"]);
      if (patch && typeof patch === "object" && !Array.isArray(patch)) {
        const version = Number(ann["version"] ?? (patch as Record<string, unknown>)["$version"]);
        this.handlers.onDesired({ ...(patch as Record<string, unknown>), $version: version });
      }
      return;
    }
    const rid = Buffer.isBuffer(cid) ? cid.toString("hex") : String(cid);
    const finish = this.twinCalls.get(rid);
    if (!finish) return;
    const version = ann["version"] === undefined ? undefined : Number(ann["version"]);
    finish({ status: Number(ann["status"] ?? 500), ...(version !== undefined ? { version } : {}), body: parseJsonBody(m["body"]) });
  }

  private failTwinCalls(): void {
    for (const finish of [...this.twinCalls.values()]) finish(undefined);
    this.twinCalls.clear();
  }

  private watch(kind: DownKind, link: Sender | Receiver): void {
    const down = (ctx: EventContext) => {
      if (this.closed) return;
      const current = kind === "c2d" ? [this.c2d] : kind === "methods" ? [this.methodsIn, this.methodsOut] : [this.twinIn, this.twinOut];
      if (!current.includes(link as never)) return; // an older link of this kind, already replaced
      const error = (link as unknown as { remote?: { detach?: { error?: unknown } } }).remote?.detach?.error ?? ctx.sender?.error ?? ctx.receiver?.error;
      this.closeKind(kind);
      this.handlers.onRefused(kind, error);
    };
    link.on(link.is_sender() ? "sender_close" : "receiver_close", down);
    link.on(link.is_sender() ? "sender_error" : "receiver_error", down);
  }
}

function open(link: Sender | Receiver | undefined): boolean {
  return link !== undefined && !link.is_closed();
}

function closeQuietly(x: { close(): void } | undefined): void {
  try {
    x?.close();
  } catch {
    // the connection is already gone
  }
}
