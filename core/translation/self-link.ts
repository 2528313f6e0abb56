// Protocol mode: translated devices have no identities, so the cloud reaches them through the gateway's own
// identity. One link per hub carries the gateway's methods, desired patches and C2D to whichever protocol-
// mode translator knows the device named in them (several translation plugins may run at once).
import type { Attachment, C2DOutcome, Hub, MethodRequest, MethodResult, TwinProperties } from "../hub/types.js";
import type { Principal } from "../identity/types.js";
import type { Message } from "../message.js";
import { DEVICE_ID_PROPERTY } from "./convert.js";

/** What the mux needs of a translator. */
export interface MuxMember {
  knows(deviceId: string): boolean;
  accepts(deviceId: string, kind: "c2d" | "inputs" | "desired" | "methods"): boolean;
  deviceIds(): string[];
  invokeDevice(deviceId: string, request: MethodRequest, signal: AbortSignal): Promise<MethodResult>;
  applyDesired(deviceId: string, patch: Record<string, unknown>): Promise<Record<string, unknown>>;
  deliverC2D(deviceId: string, message: Message): Promise<C2DOutcome>;
}

/**
 * The gateway's twin desired properties for protocol-mode devices: `{ "devices": { "<deviceId>": { key: value } } }`.
 * A direct method on the gateway: payload `{ "deviceId": "<id>", "payload": <the device's method payload> }`.
 * A C2D message to the gateway: application property `deviceId` names the device.
 */
export const PROTOCOL_DESIRED_KEY = "devices";

class SelfMux {
  private readonly members = new Set<MuxMember>();
  private attachment: Attachment | undefined;
  readonly principal: Principal;
  readonly head = "translation";

  constructor(private readonly hub: Hub, self: string) {
    this.principal = { id: self, deviceId: self, method: "on-behalf-of", actor: self, authChain: [self] };
  }

  /** Adds a translator; returns `changed` (call when its devices can take more) and `leave`. */
  join(member: MuxMember): { changed: () => void; leave: () => void } {
    this.members.add(member);
    this.attachment ??= this.hub.attach(this);
    this.attachment.changed();
    const changed = (): void => this.attachment?.changed();
    const leave = (): void => {
      this.members.delete(member);
      if (this.members.size === 0) {
        const a = this.attachment;
        this.attachment = undefined;
        a?.detach();
      }
    };
    return { changed, leave };
  }

  private owner(deviceId: unknown): MuxMember | undefined {
    if (typeof deviceId !== "string") return undefined;
    for (const m of this.members) if (m.knows(deviceId)) return m;
    return undefined;
  }

  accepts(kind: "c2d" | "inputs" | "desired" | "methods"): boolean {
    if (kind === "inputs") return false;
    // Methods are always taken (unknown devices get 404 from here); desired and C2D once a device can use them.
    if (kind === "methods") return this.members.size > 0;
    for (const m of this.members) for (const id of m.deviceIds()) if (m.accepts(id, kind)) return true;
    return false;
  }

  async deliverC2D(message: Message): Promise<C2DOutcome> {
    const deviceId = message.properties[DEVICE_ID_PROPERTY];
    const m = this.owner(deviceId);
    if (!m || deviceId === undefined) return "rejected";
    return m.deliverC2D(deviceId, message);
  }

  async deliverInput(): Promise<void> {
    throw new Error("the gateway's translation link takes no module inputs");
  }

  desiredPatch(patch: TwinProperties): void {
    const devices = patch[PROTOCOL_DESIRED_KEY];
    if (!devices || typeof devices !== "object") return;
    for (const [deviceId, props] of Object.entries(devices as Record<string, unknown>)) {
      if (!props || typeof props !== "object") continue;
      void this.owner(deviceId)?.applyDesired(deviceId, props as Record<string, unknown>);
    }
  }

  async invokeMethod(request: MethodRequest, signal: AbortSignal): Promise<MethodResult> {
    const p = request.payload as { deviceId?: unknown; payload?: unknown } | null;
    const m = this.owner(p?.deviceId);
    if (!m || typeof p?.deviceId !== "string") {
      return { status: 404, payload: { message: `no translated device ${JSON.stringify(p?.deviceId)}; call the gateway's method with payload {"deviceId": "<device>", "payload": …}` } };
    }
    return m.invokeDevice(p.deviceId, { ...request, payload: p.payload ?? null }, signal);
  }

  close(): void {
    // Replaced by another link of the gateway's own identity: members re-attach when they next join.
    this.attachment = undefined;
  }
}

const muxes = new WeakMap<Hub, SelfMux>();

/** The hub's protocol-mode mux (created on first use). */
export function selfMux(hub: Hub, self: string): SelfMux {
  let mux = muxes.get(hub);
  if (!mux) muxes.set(hub, (mux = new SelfMux(hub, self)));
  return mux;
}
