import dgram from "node:dgram";
import {
  DeviceReply, inject, injectable, isStrataError, PluginError, TOKENS, Translator,
  type Hub, type Identities, type Listeners, type Logger, type Plugin, type StrataConfig,
} from "strata";
import type { JsonUdpConfig } from "./config.js";
import { jsonDatagramConverter, type UdpCommand } from "./converter.js";

export const PLUGIN_NAME = "json-udp";

interface Waiting {
  resolve(reply: DeviceReply): void;
  reject(err: Error): void;
}

/** JSON datagrams from small devices → telemetry; commands go back as datagrams to where the device last sent from. */
@injectable()
export class JsonUdpPlugin implements Plugin {
  private translator: Translator<string, UdpCommand> | undefined;
  private socket: dgram.Socket | undefined;
  private readonly lastSeen = new Map<string, dgram.RemoteInfo>();
  private readonly methods = new Map<number, Waiting>();
  private nextRid = 1;

  constructor(
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.PluginConfig) private readonly config: JsonUdpConfig,
    @inject(TOKENS.Config) private readonly gateway: StrataConfig,
    @inject(TOKENS.Hub) private readonly hub: Hub,
    @inject(TOKENS.Identities) private readonly identities: Identities,
    @inject(TOKENS.Listeners) private readonly listeners: Listeners,
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    try {
      if (signal.aborted) throw new PluginError(PLUGIN_NAME, "STRATA_TRANSLATION_START_ABORTED", "start was aborted before the socket was bound");
      this.translator = new Translator<string, UdpCommand>(this.hub, this.identities, {
        plugin: PLUGIN_NAME,
        mode: this.config.mode,
        autoCreate: this.config.auto_create,
        quotaRetryMs: this.config.quota_retry_ms,
        isRoot: this.gateway.parent === undefined,
        converters: [jsonDatagramConverter],
        transport: { execute: (deviceId, cmds, s) => this.execute(deviceId, cmds, s) },
        logger: this.log,
      });
      this.translator.start();
      const address = this.gateway.listen.address;
      const socket = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
      this.socket = socket;
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(this.config.port, address, () => {
          socket.off("error", reject);
          resolve();
        });
      });
      socket.on("error", (err) => this.log.warn({ err }, "json-udp socket error"));
      socket.on("message", (msg, from) => void this.onDatagram(msg.toString("utf8").trim(), from));
      const bound = socket.address();
      this.listeners.report({ name: PLUGIN_NAME, address: bound.address, port: bound.port });
      this.log.info({ address: bound.address, port: bound.port }, "json-udp listening");
    } catch (err) {
      await this.stop();
      if (err instanceof PluginError) throw err;
      throw new PluginError(PLUGIN_NAME, "STRATA_LISTEN_FAILED", `cannot bind udp port ${this.config.port} (plugins.json-udp.port): ${(err as Error).message}; choose another port`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    await this.translator?.stop();
    this.translator = undefined;
    for (const w of this.methods.values()) w.reject(new Error("the gateway is stopping"));
    this.methods.clear();
    this.lastSeen.clear();
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return;
    this.listeners.remove(PLUGIN_NAME);
    await new Promise<void>((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve(); // never bound: nothing to close
      }
    });
  }

  private async onDatagram(text: string, from: dgram.RemoteInfo): Promise<void> {
    const translator = this.translator;
    if (!translator) return;
    if (this.takeAnswer(text)) return;
    let answer = "ok";
    try {
      const r = await translator.receive(text, { address: `${from.address}:${from.port}` });
      this.lastSeen.set(r.deviceId, from);
    } catch (err) {
      answer = `error ${isStrataError(err) ? err.code : "STRATA_TRANSLATION_FAILED"}`;
      if (!isStrataError(err)) this.log.error({ err }, "json-udp input failed");
    }
    if (this.config.ack) this.socket?.send(answer, from.port, from.address);
  }

  /** A device's answer to a method: `{"rid":1,"status":200,"payload":…}`. */
  private takeAnswer(text: string): boolean {
    if (!text.startsWith('{"rid"')) return false;
    try {
      const a = JSON.parse(text) as { rid?: unknown; status?: unknown; payload?: unknown };
      if (typeof a.rid !== "number" || typeof a.status !== "number") return false;
      this.methods.get(a.rid)?.resolve(new DeviceReply(a.status, a.payload ?? null));
      return true;
    } catch {
      return false; // not an answer: goes to the translator, which refuses it as malformed
    }
  }

  private async execute(deviceId: string, cmds: readonly UdpCommand[], signal: AbortSignal): Promise<unknown> {
    const to = this.lastSeen.get(deviceId);
    const socket = this.socket;
    if (!to || !socket) throw new Error(`${deviceId} has not sent a datagram since the gateway started; its address is unknown`);
    let answer: unknown;
    for (const cmd of cmds) {
      if (!("method" in cmd)) {
        socket.send(JSON.stringify(cmd), to.port, to.address);
        continue;
      }
      const rid = this.nextRid++;
      const reply = new Promise<DeviceReply>((resolve, reject) => {
        const timeout = AbortSignal.any([signal, AbortSignal.timeout(this.config.method_timeout_ms)]);
        const onAbort = (): void => finish(new Error(`no answer from ${deviceId} within ${this.config.method_timeout_ms} ms`));
        const finish = (err?: Error, value?: DeviceReply): void => {
          timeout.removeEventListener("abort", onAbort);
          this.methods.delete(rid);
          if (err) reject(err);
          else resolve(value!);
        };
        timeout.addEventListener("abort", onAbort, { once: true });
        this.methods.set(rid, { resolve: (v) => finish(undefined, v), reject: (e) => finish(e) });
      });
      socket.send(JSON.stringify({ rid, ...cmd }), to.port, to.address);
      answer = await reply;
    }
    return answer;
  }
}
