import dgram from "node:dgram";
import net from "node:net";
import {
  DeviceReply, inject, injectable, isStrataError, listenOn, PluginError, meterHead, TOKENS, Translator,
  type Hub, type Identities, type Metrics, type Listeners, type Logger, type Plugin, type StrataConfig,
} from "../../core/index.js";
import type { LineProtocolConfig } from "./config.js";
import { LineConnection } from "./connection.js";
import { lineConverters, type LineCommand } from "./converters.js";

export const PLUGIN_NAME = "line-protocol";
/** Names under which the listeners are reported to TOKENS.Listeners. */
export const TCP_LISTENER = "line-protocol-tcp";
export const UDP_LISTENER = "line-protocol-udp";

/**
 * Newline-delimited JSON or CSV from MCUs over TCP and UDP, translated into telemetry (protocol translation
 * by default). Commands (methods, desired properties, C2D) go back as JSON lines on the device's TCP connection.
 */
@injectable()
export class LineProtocolPlugin implements Plugin {
  private translator: Translator<string, LineCommand> | undefined;
  private server: net.Server | undefined;
  private udp: dgram.Socket | undefined;
  private readonly connections = new Set<LineConnection>();
  /** The TCP connection each device last sent from: where its commands go. */
  private readonly deviceConnections = new Map<string, LineConnection>();

  constructor(
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.PluginConfig) private readonly config: LineProtocolConfig,
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
      const metered = meterHead(this.metrics, PLUGIN_NAME, { hub: this.hub, identities: this.identities });
      const translator = new Translator<string, LineCommand>(metered.hub, metered.identities, {
        plugin: PLUGIN_NAME,
        mode: c.mode,
        autoCreate: c.auto_create,
        isRoot: this.gateway.parent === undefined,
        quotaRetryMs: c.quota_retry_ms,
        converters: lineConverters(c.device_id_field, c.csv_columns),
        transport: { execute: (deviceId, cmds, s) => this.execute(deviceId, cmds, s) },
        logger: this.log,
      });
      this.translator = translator;
      translator.start();
      const address = this.gateway.listen.address;
      if (c.tcp) {
        const server = net.createServer((socket) => this.accept(socket));
        server.maxConnections = c.max_connections;
        this.server = server;
        const bound = await listenOn(server, address, c.tcp_port, "line-protocol tcp");
        this.listeners.report({ name: TCP_LISTENER, address: bound.address, port: bound.port });
        this.log.info({ address: bound.address, port: bound.port }, "line-protocol tcp listening");
        abortIfAsked(signal);
      }
      if (c.udp) {
        const udp = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
        this.udp = udp;
        await new Promise<void>((resolve, reject) => {
          udp.once("error", reject);
          udp.bind(c.udp_port, address, () => {
            udp.off("error", reject);
            resolve();
          });
        }).catch((err: NodeJS.ErrnoException) => {
          throw new PluginError(PLUGIN_NAME, "STRATA_LISTEN_FAILED", `cannot bind udp ${address}:${c.udp_port} (plugins.line-protocol.udp_port): ${err.message}; choose another port or set udp = false`, { cause: err });
        });
        udp.on("error", (err) => this.log.warn({ err }, "line-protocol udp error"));
        udp.on("message", (msg, rinfo) => void this.onDatagram(msg, rinfo));
        const a = udp.address();
        this.listeners.report({ name: UDP_LISTENER, address: a.address, port: a.port });
        this.log.info({ address: a.address, port: a.port }, "line-protocol udp listening");
        abortIfAsked(signal);
      }
    } catch (err) {
      await this.stop();
      if (err instanceof PluginError) throw err;
      const code = isStrataError(err) ? err.code : "STRATA_TRANSLATION_START_FAILED";
      throw new PluginError(PLUGIN_NAME, code, (err as Error).message ?? String(err), { cause: err });
    }
  }

  async stop(): Promise<void> {
    await this.translator?.stop();
    this.translator = undefined;
    const server = this.server;
    this.server = undefined;
    const closed = server?.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const conn of this.connections) conn.close();
    this.connections.clear();
    this.deviceConnections.clear();
    await closed;
    if (server) this.listeners.remove(TCP_LISTENER);
    const udp = this.udp;
    this.udp = undefined;
    if (udp) {
      await new Promise<void>((resolve) => {
        try {
          udp.close(() => resolve());
        } catch {
          resolve(); // never bound: nothing to close
        }
      });
      this.listeners.remove(UDP_LISTENER);
    }
  }

  private accept(socket: net.Socket): void {
    const translator = this.translator;
    if (!translator) {
      socket.destroy();
      return;
    }
    const conn = new LineConnection(socket, {
      translator,
      log: this.log,
      ack: this.config.ack,
      maxLineBytes: this.config.max_line_bytes,
      maxPendingLines: this.config.max_pending_lines,
      onDevice: (deviceId, c) => this.deviceConnections.set(deviceId, c),
      onClose: (c) => {
        this.connections.delete(c);
        for (const [id, x] of this.deviceConnections) if (x === c) this.deviceConnections.delete(id);
      },
    });
    this.connections.add(conn);
  }

  private async onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): Promise<void> {
    const translator = this.translator;
    const udp = this.udp;
    if (!translator || !udp) return;
    const address = `${rinfo.address}:${rinfo.port}`;
    // UDP has no back-pressure: a datagram waits for its lines to be durable, then is acknowledged.
    const lines = msg.toString("utf8").split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l.trim() !== "");
    for (const line of lines) {
      let answer = "ok";
      try {
        await translator.receive(line, { address });
      } catch (err) {
        answer = `error ${isStrataError(err) ? err.code : "STRATA_TRANSLATION_FAILED"}`;
        if (!isStrataError(err)) this.log.error({ err, address }, "line-protocol input failed");
      }
      if (this.config.ack && this.udp) this.udp.send(answer + "\n", rinfo.port, rinfo.address);
    }
  }

  private async execute(deviceId: string, cmds: readonly LineCommand[], signal: AbortSignal): Promise<unknown> {
    const conn = this.deviceConnections.get(deviceId);
    if (!conn?.open) throw new Error(`${deviceId} has no open TCP connection (commands need one; UDP devices cannot take them)`);
    let answer: unknown;
    for (const cmd of cmds) {
      const r = await conn.send(cmd, signal, this.config.method_timeout_ms);
      if (r !== undefined) {
        const a = r as { status: number; payload: unknown };
        answer = new DeviceReply(a.status, a.payload);
      }
    }
    return answer;
  }
}

function abortIfAsked(signal: AbortSignal): void {
  if (signal.aborted) throw new PluginError(PLUGIN_NAME, "STRATA_TRANSLATION_START_ABORTED", "start was aborted (timeout or shutdown) before the listeners were up");
}
