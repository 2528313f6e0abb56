// The plumbing a translation plugin gets from core: identities, durable ingest with back-pressure, and the
// hub links that carry twins, methods and C2D to translated devices.
import { StrataError, isStrataError } from "../errors.js";
import type { Attachment, C2DOutcome, Hub, MethodRequest, MethodResult, TwinProperties } from "../hub/types.js";
import { generateKey } from "../identity/sas.js";
import type { Identities, Principal } from "../identity/types.js";
import type { Logger } from "../log.js";
import type { Message } from "../message.js";
import { isValidDeviceId, recognize, telemetryToInbound, validateConverter } from "./convert.js";
import { selfMux } from "./self-link.js";
import { registerStats, unregisterStats } from "./stats.js";
import { DeviceReply } from "./types.js";
import type {
  CloudMessage, ConvertMeta, Converter, ReceiveResult, SourceHint, Telemetry, TranslationStats, TranslatorOptions,
} from "./types.js";

/** A `toDevice.methods` or `toDevice.desired` entry under this key takes every name the others do not. */
export const WILDCARD = "*";

interface DeviceEntry<Raw, Cmd> {
  converter: Converter<Raw, Cmd>;
  principal: Principal;
  attachment?: Attachment;
}

/**
 * One translation plugin instance's view of the hub. The plugin hands it raw input (`receive`) and a
 * transport for commands; the translator recognises the device, converts, makes sure the identity exists,
 * ingests durably (resolving only when the messages are on disk) and connects the device to the hub so its
 * twin, methods and C2D reach the transport.
 *
 * Back-pressure: `receive` resolves only when the messages are durable, and while the store is over quota it
 * keeps retrying instead of rejecting, so a transport that awaits `receive` before reading more from a source
 * holds that source back (TCP stops reading, the device's send buffer fills). Nothing acknowledged is lost.
 */
export class Translator<Raw = unknown, Cmd = unknown> {
  readonly stats: TranslationStats = {
    received: 0, ingested: 0, malformed: 0, refused: 0, created: 0, quotaWaits: 0, commands: 0, commandErrors: 0,
  };
  private readonly devices = new Map<string, DeviceEntry<Raw, Cmd>>();
  private readonly creating = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private unsubscribe: (() => void) | undefined;
  private mux: { changed: () => void; leave: () => void } | undefined;
  private started = false;

  constructor(
    private readonly hub: Hub,
    private readonly identities: Identities,
    private readonly opts: TranslatorOptions<Raw, Cmd>,
  ) {
    this.log = opts.logger;
    for (const c of opts.converters) validateConverter(c as Converter<unknown, unknown>, opts.plugin);
    if (opts.converters.length === 0) {
      throw new StrataError("STRATA_TRANSLATION_CONVERTER", `plugin ${opts.plugin}: no converters; give the translator at least one`);
    }
  }

  get mode(): TranslatorOptions<Raw, Cmd>["mode"] {
    return this.opts.mode;
  }

  get plugin(): string {
    return this.opts.plugin;
  }

  /** Connects to the hub: in protocol mode the gateway's own link, in both modes the identity events. */
  start(): void {
    if (this.started) return;
    this.started = true;
    registerStats(this.hub, this.opts.plugin, this.stats);
    if (this.opts.mode === "protocol") this.mux = selfMux(this.hub, this.identities.self).join(this);
    this.unsubscribe = this.identities.on((e) => {
      const id = e.record.id;
      if (!this.devices.has(id) || this.opts.mode !== "identity") return;
      if (e.type === "removed" || e.record.status === "disabled") {
        this.log.info({ device: id, event: e.type }, "translated device disconnected by identity change");
        this.offline(id);
      }
    });
  }

  /** Known device ids (seen or brought online). */
  deviceIds(): string[] {
    return [...this.devices.keys()];
  }

  knows(deviceId: string): boolean {
    return this.devices.has(deviceId);
  }

  /**
   * One raw input from a device: recognised, converted and ingested durably (in order). Rejects with
   * STRATA_TRANSLATION_MALFORMED (no converter takes it, or the converter threw), STRATA_TRANSLATION_UNKNOWN_DEVICE,
   * _DISABLED, _OUT_OF_SCOPE or _STOPPED; each refusal is counted and logged at warn, and only this input fails.
   */
  async receive(raw: Raw, hint: SourceHint = {}): Promise<ReceiveResult> {
    this.stats.received++;
    this.throwIfStopped();
    const found = recognize(this.opts.converters, raw, hint);
    if (!found) throw this.malformed(hint, undefined, "no converter recognises this input");
    const { converter, deviceId } = found;
    if (!isValidDeviceId(deviceId)) throw this.malformed(hint, deviceId, `device id ${JSON.stringify(deviceId)} is not a valid IoT Hub device id`);
    let telemetry: readonly Telemetry[];
    try {
      telemetry = converter.fromDevice(raw, this.meta(converter, deviceId));
      if (!Array.isArray(telemetry)) throw new Error("fromDevice must return an array of telemetry");
    } catch (err) {
      throw this.malformed(hint, deviceId, (err as Error).message ?? String(err), err);
    }
    const entry = await this.online(deviceId, converter);
    const ids: string[] = [];
    for (const t of telemetry) {
      const inbound = telemetryToInbound(t, deviceId, this.opts.mode);
      const result = await this.ingestHoldingBack(entry.principal, inbound, deviceId);
      ids.push(result);
      this.stats.ingested++;
    }
    return { deviceId, identity: entry.principal.id, ids };
  }

  /**
   * Brings a device online without input (a polled PLC at start): makes sure its identity exists and, in
   * identity mode, attaches its link so its twin, methods and C2D work. Idempotent.
   */
  async online(deviceId: string, converter?: Converter<Raw, Cmd>): Promise<DeviceEntry<Raw, Cmd>> {
    const known = this.devices.get(deviceId);
    if (known) return known;
    this.throwIfStopped();
    const conv = converter ?? this.opts.converters[0]!;
    const principal = await this.principalFor(deviceId);
    this.throwIfStopped();
    const again = this.devices.get(deviceId);
    if (again) return again;
    const entry: DeviceEntry<Raw, Cmd> = { converter: conv, principal };
    this.devices.set(deviceId, entry);
    if (this.opts.mode === "identity") {
      const link = new TranslatedLink(this, deviceId, principal);
      entry.attachment = this.hub.attach(link);
    } else {
      this.mux?.changed();
    }
    this.log.info({ device: deviceId, model: conv.model, mode: this.opts.mode }, "translated device online");
    return entry;
  }

  /** Forgets a device and detaches its link (identity mode). */
  offline(deviceId: string): void {
    const entry = this.devices.get(deviceId);
    if (!entry) return;
    this.devices.delete(deviceId);
    entry.attachment?.detach();
  }

  /** Stops taking input, detaches every link and waits for nothing else: the plugin closes its sockets. */
  async stop(): Promise<void> {
    this.abort.abort(new StrataError("STRATA_TRANSLATION_STOPPED", `plugin ${this.opts.plugin} is stopping`));
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.mux?.leave();
    this.mux = undefined;
    for (const id of [...this.devices.keys()]) this.offline(id);
    if (this.started) unregisterStats(this.hub, this.opts.plugin, this.stats);
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  // ---- cloud → device -------------------------------------------------------------------------------

  accepts(deviceId: string, kind: "c2d" | "inputs" | "desired" | "methods"): boolean {
    const to = this.devices.get(deviceId)?.converter.toDevice;
    if (!this.opts.transport || !to || this.abort.signal.aborted) return false;
    if (kind === "methods") return to.methods !== undefined;
    if (kind === "desired") return to.desired !== undefined;
    if (kind === "c2d") return to.c2d !== undefined;
    return false;
  }

  /** A direct method for one device: 200 with the device's answer, 501 unknown method, 400 bad payload, 502 device unreachable. */
  async invokeDevice(deviceId: string, request: MethodRequest, signal: AbortSignal): Promise<MethodResult> {
    const entry = this.devices.get(deviceId);
    const methods = entry?.converter.toDevice?.methods;
    const fn = methods?.[request.methodName] ?? methods?.[WILDCARD];
    if (!entry || !fn || !this.opts.transport) {
      return { status: 501, payload: { message: `${deviceId} (${this.opts.plugin}) has no method ${request.methodName}` } };
    }
    let commands: readonly Cmd[];
    try {
      commands = fn(request.payload, { ...this.meta(entry.converter, deviceId), key: request.methodName });
    } catch (err) {
      return { status: 400, payload: { message: `${request.methodName}: ${(err as Error).message}` } };
    }
    this.stats.commands++;
    try {
      const answer = await this.opts.transport.execute(deviceId, commands, AbortSignal.any([signal, this.abort.signal]));
      if (answer instanceof DeviceReply) return { status: answer.status, payload: answer.payload ?? null };
      return { status: 200, payload: answer ?? null };
    } catch (err) {
      this.stats.commandErrors++;
      this.log.warn({ err, device: deviceId, method: request.methodName }, "translated method failed");
      return { status: 502, payload: { message: `${deviceId} did not take ${request.methodName}: ${(err as Error).message}` } };
    }
  }

  /** A desired patch for one device: each key the converter knows becomes commands, run in order. Returns the keys applied. */
  async applyDesired(deviceId: string, patch: Record<string, unknown>): Promise<Record<string, unknown>> {
    const entry = this.devices.get(deviceId);
    const table = entry?.converter.toDevice?.desired;
    const applied: Record<string, unknown> = {};
    if (!entry || !table || !this.opts.transport) return applied;
    for (const [key, value] of Object.entries(patch)) {
      const fn = table[key] ?? table[WILDCARD];
      if (key.startsWith("$") || !fn) continue;
      this.stats.commands++;
      try {
        const commands = fn(value, { ...this.meta(entry.converter, deviceId), key });
        await this.opts.transport.execute(deviceId, commands, this.abort.signal);
        applied[key] = value;
      } catch (err) {
        this.stats.commandErrors++;
        this.log.warn({ err, device: deviceId, key }, "translated desired property not applied");
      }
    }
    return applied;
  }

  /** A C2D message for one device: completed when the transport took its commands, rejected when it cannot convert, abandoned when unreachable. */
  async deliverC2D(deviceId: string, message: Message): Promise<C2DOutcome> {
    const entry = this.devices.get(deviceId);
    const fn = entry?.converter.toDevice?.c2d;
    if (!entry || !fn || !this.opts.transport) return "abandoned";
    const cloud: CloudMessage = {
      body: message.body,
      properties: message.properties,
      ...(message.systemProperties.messageId !== undefined ? { messageId: message.systemProperties.messageId } : {}),
      systemProperties: { ...message.systemProperties },
    };
    let commands: readonly Cmd[];
    try {
      commands = fn(cloud, this.meta(entry.converter, deviceId));
    } catch (err) {
      this.log.warn({ err, device: deviceId, messageId: cloud.messageId }, "c2d message rejected by converter");
      return "rejected";
    }
    this.stats.commands++;
    try {
      const answer = await this.opts.transport.execute(deviceId, commands, this.abort.signal);
      return answer instanceof DeviceReply && answer.status >= 400 ? "rejected" : "completed";
    } catch (err) {
      this.stats.commandErrors++;
      this.log.debug({ err, device: deviceId }, "c2d message not delivered");
      return "abandoned";
    }
  }

  /** Identity mode: after a desired patch is applied, report the values back (as a device would). */
  async reportApplied(deviceId: string, applied: Record<string, unknown>): Promise<void> {
    if (Object.keys(applied).length === 0 || this.opts.mode !== "identity") return;
    await this.hub.patchReported(deviceId, applied).catch((err: unknown) => this.log.debug({ err, device: deviceId }, "reported properties not written"));
  }

  // ---- internals ---------------------------------------------------------------------------------------

  private meta(converter: Converter<Raw, Cmd>, deviceId: string): ConvertMeta {
    return { deviceId, model: converter.model, options: this.opts.deviceOptions?.(deviceId) ?? {} };
  }

  private throwIfStopped(): void {
    if (this.abort.signal.aborted) throw new StrataError("STRATA_TRANSLATION_STOPPED", `plugin ${this.opts.plugin} is stopping; input not taken`);
  }

  private malformed(hint: SourceHint, deviceId: string | undefined, detail: string, cause?: unknown): StrataError {
    this.stats.malformed++;
    const err = new StrataError(
      "STRATA_TRANSLATION_MALFORMED",
      `plugin ${this.opts.plugin}: input${deviceId ? ` from ${deviceId}` : ""}${hint.address ? ` (${hint.address})` : ""} refused: ${detail}`,
      cause === undefined ? undefined : { cause },
    );
    this.log.warn({ err, device: deviceId, address: hint.address, malformed: this.stats.malformed }, "malformed device input refused");
    return err;
  }

  private refuse(code: string, deviceId: string, message: string): StrataError {
    this.stats.refused++;
    const err = new StrataError(code, `plugin ${this.opts.plugin}: ${message}`);
    this.log.warn({ err, device: deviceId, refused: this.stats.refused }, "translated device refused");
    return err;
  }

  private async principalFor(deviceId: string): Promise<Principal> {
    const self = this.identities.self;
    if (this.opts.mode === "protocol") return { id: self, deviceId: self, method: "on-behalf-of", actor: self, authChain: [self] };
    if (!this.identities.get(deviceId)) await this.create(deviceId);
    const record = this.identities.get(deviceId);
    if (!record) throw this.refuse("STRATA_TRANSLATION_UNKNOWN_DEVICE", deviceId, `device ${deviceId} has no identity`);
    if (record.status !== "enabled") {
      throw this.refuse("STRATA_TRANSLATION_DISABLED", deviceId, `identity ${deviceId} is disabled; enable it (strata identity …) to take its data`);
    }
    if (record.edge || record.moduleId !== undefined) {
      throw this.refuse("STRATA_TRANSLATION_OUT_OF_SCOPE", deviceId, `identity ${deviceId} is an edge device or a module; a translated device must be a plain device`);
    }
    if (!this.identities.inScope(deviceId)) {
      throw this.refuse("STRATA_TRANSLATION_OUT_OF_SCOPE", deviceId, `identity ${deviceId} is not in this gateway's scope; register it under ${self}`);
    }
    return { id: deviceId, deviceId, method: "on-behalf-of", actor: self, authChain: this.identities.authChain(deviceId) ?? [deviceId, self] };
  }

  /** First sight of an unknown device in identity mode: create it (root only), once even under concurrency. */
  private create(deviceId: string): Promise<void> {
    let pending = this.creating.get(deviceId);
    if (pending) return pending;
    if (!this.opts.autoCreate) {
      return Promise.reject(this.refuse("STRATA_TRANSLATION_UNKNOWN_DEVICE", deviceId,
        `device ${deviceId} has no identity and auto_create is off; register it (strata identity add ${deviceId}) or set auto_create = true`));
    }
    if (!this.opts.isRoot) {
      return Promise.reject(this.refuse("STRATA_TRANSLATION_CREATE_ON_CHILD", deviceId,
        `device ${deviceId} has no identity and this gateway is not the root; register it at the root with parent ${this.identities.self} (it syncs down), or use protocol mode`));
    }
    pending = (async () => {
      await this.identities.put({
        id: deviceId, deviceId, status: "enabled", edge: false,
        auth: { type: "sas", primaryKey: generateKey(), secondaryKey: generateKey() },
      });
      this.stats.created++;
      this.log.info({ device: deviceId }, "translated device identity created");
    })().finally(() => this.creating.delete(deviceId));
    this.creating.set(deviceId, pending);
    return pending;
  }

  private async ingestHoldingBack(principal: Principal, inbound: ReturnType<typeof telemetryToInbound>, deviceId: string): Promise<string> {
    let warned = false;
    for (;;) {
      this.throwIfStopped();
      try {
        return (await this.hub.ingest(principal, inbound)).id;
      } catch (err) {
        if (!isStrataError(err, "STRATA_STORE_QUOTA")) throw err;
        this.stats.quotaWaits++;
        if (!warned) this.log.warn({ err, device: deviceId }, "store over quota: holding the device source back");
        warned = true;
        await pause(this.opts.quotaRetryMs ?? 500, this.abort.signal);
      }
    }
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Identity mode: one translated device as the hub sees it. */
class TranslatedLink<Raw, Cmd> {
  readonly head: string;
  private closed = false;

  constructor(
    private readonly translator: Translator<Raw, Cmd>,
    private readonly deviceId: string,
    readonly principal: Principal,
  ) {
    this.head = translator.plugin;
  }

  accepts(kind: "c2d" | "inputs" | "desired" | "methods"): boolean {
    return !this.closed && this.translator.accepts(this.deviceId, kind);
  }

  deliverC2D(message: Message): Promise<C2DOutcome> {
    return this.translator.deliverC2D(this.deviceId, message);
  }

  async deliverInput(): Promise<void> {
    throw new StrataError("STRATA_TRANSLATION_NO_INPUTS", `translated device ${this.deviceId} has no module inputs`);
  }

  desiredPatch(patch: TwinProperties): void {
    void this.translator.applyDesired(this.deviceId, patch).then((applied) => this.translator.reportApplied(this.deviceId, applied));
  }

  invokeMethod(request: MethodRequest, signal: AbortSignal): Promise<MethodResult> {
    return this.translator.invokeDevice(this.deviceId, request, signal);
  }

  close(): void {
    this.closed = true;
  }
}
