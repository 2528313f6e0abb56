import type { C2DOutcome, DeviceLink, MethodRequest, MethodResult, Principal, TwinProperties } from "../../core/index.js";

export interface AgentLinkHandlers {
  desired: (patch: TwinProperties) => void;
  /** Answers edgeAgent's own methods; undefined passes the call on (to the link this one replaced). */
  method: (request: MethodRequest) => Promise<MethodResult | undefined>;
}

/**
 * The agent's presence as `{self}/$edgeAgent` in the hub: it takes the agent twin's desired patches (on a
 * child, core/upstream mirrors this link to the parent, so patches come down the hierarchy) and direct
 * methods. A link another plugin attached for `$edgeAgent` before (the blob plugin's log methods) keeps
 * answering the methods the agent does not know.
 */
export class AgentLink implements DeviceLink {
  readonly principal: Principal;
  readonly head = "agent";
  /** The link this one replaced in the hub, if any. */
  delegate: DeviceLink | undefined;

  constructor(
    self: string,
    private readonly handlers: AgentLinkHandlers,
  ) {
    const id = `${self}/$edgeAgent`;
    this.principal = { id, deviceId: self, moduleId: "$edgeAgent", method: "on-behalf-of", actor: self, authChain: [id, self] };
  }

  accepts(kind: "c2d" | "inputs" | "desired" | "methods"): boolean {
    return kind === "desired" || kind === "methods";
  }

  async deliverC2D(): Promise<C2DOutcome> {
    return "rejected";
  }

  async deliverInput(): Promise<void> {
    throw new Error("$edgeAgent takes no module inputs");
  }

  desiredPatch(patch: TwinProperties): void {
    this.handlers.desired(patch);
  }

  async invokeMethod(request: MethodRequest, signal: AbortSignal): Promise<MethodResult> {
    const own = await this.handlers.method(request);
    if (own) return own;
    if (this.delegate?.accepts("methods")) return this.delegate.invokeMethod(request, signal);
    return { status: 404, payload: { message: `$edgeAgent has no method ${request.methodName}` } };
  }

  close(): void {
    // the link lives as long as the agent; a newer $edgeAgent link is taken as the delegate (see EdgeAgent)
  }
}
