import dgram from "node:dgram";
import { createServer, type IncomingMessage, type OutgoingMessage, type Server } from "coap";
import {
  DeviceReply, inject, injectable, isStrataError, PluginError, PROTOCOL_DESIRED_KEY, meterHead, TOKENS, Translator,
  type Hub, type Identities, type Metrics, type Listeners, type Logger, type Plugin, type StrataConfig,
} from "../../core/index.js";
import type { CoapConfig } from "./config.js";
import { coapConverters, supportedFormat, type CoapCommand, type CoapCommandDraft, type CoapInput } from "./converters.js";
import { CommandMailbox } from "./mailbox.js";
import { parseAnswer, routeOf } from "./resources.js";

export const PLUGIN_NAME = "coap";
/** The name under which the UDP listener is reported to TOKENS.Listeners. */
export const COAP_LISTENER = "coap";

/** A response of node-coap: a plain one, or the notification stream of an observation (GET with Observe 0). */
type Response = OutgoingMessage & { write(chunk: Buffer | string): boolean; once(event: string, fn: (...a: unknown[]) => void): unknown };

/** How each refusal from the translator answers the device (RFC 7252 §5.9 response codes). */
const REFUSAL_CODES: Readonly<Record<string, string>> = {
  STRATA_TRANSLATION_MALFORMED: "4.00",
  STRATA_TRANSLATION_UNKNOWN_DEVICE: "4.04",
  STRATA_TRANSLATION_CREATE_ON_CHILD: "4.04",
  STRATA_TRANSLATION_DISABLED: "4.03",
  STRATA_TRANSLATION_OUT_OF_SCOPE: "4.03",
  STRATA_TRANSLATION_STOPPED: "5.03",
};

/**
 * A CoAP server (RFC 7252, node-coap) for constrained devices: POST `/telemetry/{id}` → telemetry (JSON or
 * SenML), GET `/twin/{id}` → the device's desired properties, commands (methods, desired changes, C2D) by
 * observing `/commands/{id}` or in the response to the next request. Protocol translation by default.
 */
@injectable()
export class CoapPlugin implements Plugin {
  private translator: Translator<CoapInput, CoapCommandDraft> | undefined;
  private mailbox: CommandMailbox | undefined;
  private server: Server | undefined;
  private socket: dgram.Socket | undefined;
  /** Responses not yet sent: on stop each is answered 5.03 while the socket is still open. */
  private readonly pending = new Set<Response>();
  private readonly observations = new Set<Response>();
  private readonly answered = new WeakSet<Response>();
  /** Where each observation's notifications go (`address:port`). */
  private readonly observers = new WeakMap<Response, string>();
  /** Per-device chain: one device's inputs are ingested in the order they arrived. */
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.PluginConfig) private readonly config: CoapConfig,
    @inject(TOKENS.Config) private readonly gateway: StrataConfig,
    @inject(TOKENS.Hub) private readonly hub: Hub,
    @inject(TOKENS.Identities) private readonly identities: Identities,
    @inject(TOKENS.Listeners) private readonly listeners: Listeners,
    /** Optional: per-head counters on /metrics when the gateway has a registry (not in a bare plugin test). */
    @inject(TOKENS.Metrics, { isOptional: true }) private readonly metrics?: Metrics,
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    try {
      abortIfAsked(signal);
      const c = this.config;
      const mailbox = new CommandMailbox({ maxQueued: c.max_queued_commands, commandTimeoutMs: c.command_timeout_ms, methodTimeoutMs: c.method_timeout_ms });
      this.mailbox = mailbox;
      const metered = meterHead(this.metrics, PLUGIN_NAME, { hub: this.hub, identities: this.identities });
      const translator = new Translator<CoapInput, CoapCommandDraft>(metered.hub, metered.identities, {
        plugin: PLUGIN_NAME,
        mode: c.mode,
        autoCreate: c.auto_create,
        isRoot: this.gateway.parent === undefined,
        quotaRetryMs: c.quota_retry_ms,
        converters: coapConverters,
        transport: { execute: (deviceId, cmds, s) => this.execute(mailbox, deviceId, cmds, s) },
        logger: this.log,
      });
      this.translator = translator;
      translator.start();
      const address = this.gateway.listen.address;
      // Our own socket: a bind error is ours to report, and node-coap's default reuseAddr would let two
      // gateways share a port silently.
      const socket = dgram.createSocket({ type: address.includes(":") ? "udp6" : "udp4", reuseAddr: false });
      this.socket = socket;
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(c.port, address, () => {
          socket.off("error", reject);
          resolve();
        });
      }).catch((err: NodeJS.ErrnoException) => {
        throw new PluginError(PLUGIN_NAME, "STRATA_LISTEN_FAILED", `cannot bind udp ${address}:${c.port} (plugins.coap.port): ${err.message}; choose another port or another [listen] address`, { cause: err });
      });
      socket.on("error", (err) => this.log.warn({ err }, "coap socket error"));
      const server = createServer({ type: address.includes(":") ? "udp6" : "udp4" });
      server.on("request", (req: IncomingMessage, res: OutgoingMessage) => this.onRequest(req, res as Response));
      server.on("error", (err: Error) => this.log.warn({ err }, "coap server error"));
      server.listen(socket);
      this.server = server;
      const a = socket.address();
      this.listeners.report({ name: COAP_LISTENER, address: a.address, port: a.port });
      this.log.info({ address: a.address, port: a.port, mode: c.mode }, "coap listening");
      abortIfAsked(signal);
    } catch (err) {
      await this.stop();
      if (err instanceof PluginError) throw err;
      const code = isStrataError(err) ? err.code : "STRATA_TRANSLATION_START_FAILED";
      throw new PluginError(PLUGIN_NAME, code, (err as Error).message ?? String(err), { cause: err });
    }
  }

  async stop(): Promise<void> {
    const stopping = new Error("the gateway is stopping");
    await this.translator?.stop();
    this.translator = undefined;
    this.mailbox?.close(stopping);
    this.mailbox = undefined;
    // Answer everything still open while the socket can send: node-coap's piggyback timers would otherwise
    // fire on a closed socket. A 5.03 notification ends an observation (RFC 7641 §3.2).
    for (const res of [...this.pending]) this.reply(res, "5.03", "gateway stopping");
    const acked = this.socket ? acksFrom(this.socket, [...this.observations.values()].map((o) => this.observers.get(o)!).filter(Boolean)) : Promise.resolve();
    for (const obs of [...this.observations]) this.endObservation(obs, "5.03");
    // The final notification is confirmable: a device that gets ICMP port-unreachable for its ACK may drop
    // the notification, so wait (briefly) for the ACKs before closing the socket.
    await acked;
    const server = this.server;
    this.server = undefined;
    server?.close();
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      await sendsFlushed(socket);
      await new Promise<void>((resolve) => {
        try {
          socket.close(() => resolve());
        } catch {
          resolve(); // never bound: nothing to close
        }
      });
      this.listeners.remove(COAP_LISTENER);
    }
    this.chains.clear();
  }

  // ---- device → gateway ----------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: Response): void {
    const translator = this.translator;
    const mailbox = this.mailbox;
    if (!translator || !mailbox) {
      res.code = "5.03";
      safely(() => res.end("gateway stopping"));
      return;
    }
    const route = routeOf(req.method, req.url);
    const observe = req.headers.Observe === 0;
    if (observe && route.kind === "commands") return this.observeCommands(route.deviceId, req, res, mailbox);
    if (this.pending.size >= this.config.max_inflight) {
      // UDP has no flow control: tell the device when to retry (RFC 7252 §5.9.3.4, Max-Age in seconds).
      res.setOption("Max-Age", 1);
      this.reply(res, "5.03", `busy: ${this.pending.size} requests in flight (plugins.coap.max_inflight); retry after Max-Age`);
      return;
    }
    this.pending.add(res);
    const address = `${req.rsinfo.address}:${req.rsinfo.port}`;
    switch (route.kind) {
      case "not-found":
        return this.reply(res, "4.04", route.detail);
      case "method-not-allowed":
        return this.reply(res, "4.05", route.detail);
      case "telemetry":
        return this.inOrder(route.deviceId, () => this.telemetry(translator, mailbox, route.deviceId, route.query, req, res, address));
      case "twin":
        return void this.twin(translator, route.deviceId, res);
      case "commands":
        return void this.commandsPoll(translator, mailbox, route.deviceId, res);
      case "answer": {
        const taken = mailbox.answer(route.deviceId, route.rid, parseAnswer(req.payload));
        return this.reply(res, taken ? "2.04" : "4.04", taken ? undefined : `no method ${route.rid} waits for an answer from ${route.deviceId} (late or unknown)`);
      }
    }
  }

  private async telemetry(translator: Translator<CoapInput, CoapCommandDraft>, mailbox: CommandMailbox, deviceId: string,
    query: Record<string, string>, req: IncomingMessage, res: Response, address: string): Promise<void> {
    if (req.payload.length > this.config.max_payload_bytes) {
      translator.stats.received++;
      translator.stats.malformed++;
      this.log.warn({ device: deviceId, address, bytes: req.payload.length }, "malformed device input refused");
      return this.reply(res, "4.13", `payload of ${req.payload.length} bytes is over plugins.coap.max_payload_bytes (${this.config.max_payload_bytes})`);
    }
    const contentFormat = formatOf(req.headers["Content-Format"]);
    try {
      await translator.receive({ payload: req.payload, contentFormat, query }, { deviceId, address });
    } catch (err) {
      const unsupported = isStrataError(err, "STRATA_TRANSLATION_MALFORMED") && !supportedFormat(contentFormat);
      return this.refuse(res, err, unsupported ? "4.15" : undefined);
    }
    // 2.04 once durable; commands waiting for a device that does not observe ride on the response.
    const commands = mailbox.take(deviceId);
    this.reply(res, "2.04", commands.length > 0 ? JSON.stringify(commands) : undefined);
  }

  /** GET /twin/{id}: identity mode the device's own twin; protocol mode its entry under the gateway's `devices`. */
  private async twin(translator: Translator<CoapInput, CoapCommandDraft>, deviceId: string, res: Response): Promise<void> {
    try {
      await translator.online(deviceId);
      let desired: Record<string, unknown>;
      if (translator.mode === "identity") {
        desired = (await this.hub.getTwin(deviceId)).properties.desired;
      } else {
        const own = (await this.hub.getTwin(this.identities.self)).properties.desired;
        const devices = own[PROTOCOL_DESIRED_KEY] as Record<string, unknown> | undefined;
        const entry = devices?.[deviceId];
        desired = { ...(entry && typeof entry === "object" ? entry as Record<string, unknown> : {}), $version: own.$version };
      }
      this.reply(res, "2.05", JSON.stringify(desired));
    } catch (err) {
      this.refuse(res, err);
    }
  }

  /** GET /commands/{id} without Observe (or a deregistration, Observe 1): what is queued, now. */
  private async commandsPoll(translator: Translator<CoapInput, CoapCommandDraft>, mailbox: CommandMailbox, deviceId: string, res: Response): Promise<void> {
    try {
      await translator.online(deviceId);
      this.reply(res, "2.05", JSON.stringify(mailbox.take(deviceId)));
    } catch (err) {
      this.refuse(res, err);
    }
  }

  /** GET /commands/{id} with Observe 0: a first (empty) notification now, then one per command. */
  private observeCommands(deviceId: string, req: IncomingMessage, stream: Response, mailbox: CommandMailbox): void {
    const translator = this.translator!;
    this.observations.add(stream);
    this.observers.set(stream, `${req.rsinfo.address}:${req.rsinfo.port}`);
    let unobserve: (() => void) | undefined;
    const end = (): void => {
      unobserve?.();
      this.observations.delete(stream);
    };
    stream.once("finish", end);
    stream.once("error", end);
    translator.online(deviceId).then(() => {
      if (!this.observations.has(stream)) return;
      stream.setOption("Content-Format", "application/json");
      if (!notify(stream, "[]")) return end();
      unobserve = mailbox.observe(deviceId, { notify: (cmd: CoapCommand) => this.observations.has(stream) && notify(stream, JSON.stringify(cmd)) });
      this.log.debug({ device: deviceId, address: `${req.rsinfo.address}:${req.rsinfo.port}` }, "coap device observes its commands");
    }, (err: unknown) => {
      this.observations.delete(stream);
      const [code, text] = this.refusal(err);
      this.endObservation(stream, code, text);
    });
  }

  // ---- gateway → device ------------------------------------------------------------------------------

  private async execute(mailbox: CommandMailbox, deviceId: string, cmds: readonly CoapCommandDraft[], signal: AbortSignal): Promise<unknown> {
    let answer: unknown;
    for (const cmd of cmds) {
      if ("method" in cmd && !("rid" in cmd)) {
        const a = await mailbox.call(deviceId, cmd.method, cmd.payload, signal);
        answer = new DeviceReply(a.status, a.payload);
      } else {
        await mailbox.deliver(deviceId, cmd as CoapCommand, signal);
      }
    }
    return answer;
  }

  // ---- plumbing ------------------------------------------------------------------------------------

  private inOrder(deviceId: string, work: () => Promise<void>): void {
    const next = (this.chains.get(deviceId) ?? Promise.resolve()).then(work);
    const settled = next.catch((err: unknown) => this.log.error({ err, device: deviceId }, "coap request failed"));
    this.chains.set(deviceId, settled);
    void settled.then(() => {
      if (this.chains.get(deviceId) === settled) this.chains.delete(deviceId);
    });
  }

  private refusal(err: unknown): [string, string] {
    if (isStrataError(err)) return [REFUSAL_CODES[err.code] ?? "5.00", `${err.code}: ${err.message}`];
    this.log.error({ err }, "coap request failed");
    return ["5.00", "STRATA_TRANSLATION_FAILED"];
  }

  private refuse(res: Response, err: unknown, code?: string): void {
    const [c, text] = this.refusal(err);
    this.reply(res, code ?? c, text);
  }

  /** Sends the response once (RFC 7252 §5.5.2: an error's payload is a diagnostic text). */
  private reply(res: Response, code: string, payload?: string): void {
    this.pending.delete(res);
    if (this.answered.has(res)) return;
    this.answered.add(res);
    res.code = code;
    if (payload !== undefined && code.startsWith("2")) res.setOption("Content-Format", "application/json");
    safely(() => res.end(payload ?? ""));
  }

  private endObservation(stream: Response, code: string, text = "gateway stopping"): void {
    this.observations.delete(stream);
    safely(() => {
      stream.statusCode = code;
      stream.write(text);
      stream.end();
    });
  }
}

/** node-coap names known formats (`application/json`) and leaves unknown ones as numbers. */
function formatOf(v: unknown): string | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  return String(v);
}

function notify(stream: Response, text: string): boolean {
  try {
    stream.write(text);
    return true;
  } catch {
    return false;
  }
}

/** A send on a socket that just closed throws synchronously in node-coap; the device retries. */
function safely(send: () => void): void {
  try {
    send();
  } catch {
    // nothing to do: the device did not get this answer and will retransmit or time out
  }
}

/** Resolves when each of `peers` (`address:port`) sent something (its ACK), or after 250 ms. */
function acksFrom(socket: dgram.Socket, peers: readonly string[]): Promise<void> {
  const waiting = new Set(peers);
  if (waiting.size === 0) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      socket.off("message", onMessage);
      resolve();
    };
    const onMessage = (_: Buffer, from: dgram.RemoteInfo): void => {
      waiting.delete(`${from.address}:${from.port}`);
      if (waiting.size === 0) done();
    };
    const timer = setTimeout(done, 250);
    socket.on("message", onMessage);
  });
}

/** Closing a UDP socket drops what libuv has not sent yet: let the final answers leave first (bounded). */
async function sendsFlushed(socket: dgram.Socket): Promise<void> {
  for (let turn = 0; turn < 100; turn++) {
    let queued = 0;
    try {
      queued = socket.getSendQueueCount();
    } catch {
      return; // never bound: nothing was sent
    }
    if (queued === 0) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

function abortIfAsked(signal: AbortSignal): void {
  if (signal.aborted) throw new PluginError(PLUGIN_NAME, "STRATA_TRANSLATION_START_ABORTED", "start was aborted (timeout or shutdown) before the CoAP server was up");
}
