import tls from "node:tls";
import { createWebSocketStream } from "ws";
import {
  inject, injectable, isStrataError, listenOn, meterHead, PluginError, TOKENS,
  type HttpFront, type Hub, type Identities, type Listeners, type Logger, type Pki, type Plugin, type Store,
  type StrataConfig, type Metrics,
} from "../../core/index.js";
import type { MqttConfig } from "./config.js";
import { MqttHead } from "./head.js";
import { SESSIONS_NAMESPACE, SessionStore, type StoredSession } from "./sessions.js";

export const PLUGIN_NAME = "mqtt";
/** Where the Azure SDKs open MQTT over WebSocket (spikes.md §5). */
export const WEBSOCKET_PATH = "/$iothub/websocket";
export const WEBSOCKET_SUBPROTOCOL = "mqtt";

/**
 * The MQTT head (IoT Hub's MQTT 3.1.1 device protocol): TLS on `[listen] mqtt` and WebSocket on the HTTPS
 * listener, both into one aedes engine (head.ts).
 */
@injectable()
export class MqttPlugin implements Plugin {
  private head: MqttHead | undefined;
  private server: tls.Server | undefined;
  private unmountWebSocket: (() => void) | undefined;
  private unwatchCertificate: (() => void) | undefined;

  constructor(
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.PluginConfig) private readonly config: MqttConfig,
    @inject(TOKENS.Config) private readonly gateway: StrataConfig,
    @inject(TOKENS.Hub) private readonly hub: Hub,
    @inject(TOKENS.Identities) private readonly identities: Identities,
    @inject(TOKENS.Store) private readonly store: Store,
    @inject(TOKENS.HttpFront) private readonly front: HttpFront,
    @inject(TOKENS.Pki) private readonly pki: Pki,
    @inject(TOKENS.Listeners) private readonly listeners: Listeners,
    /** Optional: per-head counters on /metrics when the gateway has a registry (not in a bare plugin test). */
    @inject(TOKENS.Metrics, { isOptional: true }) private readonly metrics?: Metrics,
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    try {
      const { hub, identities } = meterHead(this.metrics, PLUGIN_NAME, { hub: this.hub, identities: this.identities });
      const head = await MqttHead.create({
        hub,
        identities,
        sessions: new SessionStore(this.store.kv<StoredSession>(SESSIONS_NAMESPACE)),
        log: this.log,
        config: this.config,
        // Counted with the credential refusals (reason "malformed", as Identities names a malformed token).
        onMalformedConnect: () => this.metrics?.heads().authFailures.inc({ head: PLUGIN_NAME, reason: "malformed" }),
      });
      this.head = head;
      abortIfAsked(signal);
      if (this.config.tls) {
        // A client certificate is requested but not required, and not verified by TLS itself: Identities
        // decides (thumbprint or CA), and a SAS client sends none.
        const server = tls.createServer(
          { cert: this.pki.chain, key: this.pki.key, ca: this.pki.trustBundle, requestCert: true, rejectUnauthorized: false, minVersion: "TLSv1.2" },
          (socket) => head.handle(socket),
        );
        server.on("tlsClientError", (err, socket) => this.log.debug({ err, remoteAddress: socket.remoteAddress }, "mqtt tls handshake failed"));
        this.listeners.handshakes.guard(server); // the gateway's cap on handshakes in progress (reconnect storms)
        this.server = server;
        // A renewed certificate or trust bundle (core/pki) applies to new connections; open ones keep theirs.
        this.unwatchCertificate = this.pki.onCertificateChanged((m) => {
          server.setSecureContext({ cert: m.cert, key: m.key, ca: m.ca, minVersion: "TLSv1.2" });
          this.log.info({}, "mqtt tls certificate replaced");
        });
        const { address, mqtt } = this.gateway.listen;
        const bound = await listenOn(server, address, mqtt, "mqtt head");
        this.listeners.report({ name: "mqtt", address: bound.address, port: bound.port });
        this.log.info({ address: bound.address, port: bound.port }, "mqtt listening");
        abortIfAsked(signal);
      }
      if (this.config.websocket) {
        this.unmountWebSocket = this.front.websocket(WEBSOCKET_PATH, WEBSOCKET_SUBPROTOCOL, (ws, req) => {
          const stream = createWebSocketStream(ws);
          stream.on("error", (err) => this.log.debug({ err }, "mqtt websocket error"));
          head.handle(stream, req);
        });
      }
    } catch (err) {
      await this.stop();
      if (err instanceof PluginError) throw err;
      const code = isStrataError(err) ? err.code : "STRATA_MQTT_START_FAILED";
      throw new PluginError(PLUGIN_NAME, code, (err as Error).message ?? String(err), { cause: err });
    }
  }

  async stop(): Promise<void> {
    this.unwatchCertificate?.();
    this.unwatchCertificate = undefined;
    this.unmountWebSocket?.();
    this.unmountWebSocket = undefined;
    const server = this.server;
    this.server = undefined;
    const head = this.head;
    this.head = undefined;
    const closed = server?.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    // Closing the head destroys every connection, which lets server.close() finish.
    await head?.close();
    await closed;
    if (server) this.listeners.remove("mqtt");
  }
}

function abortIfAsked(signal: AbortSignal): void {
  if (signal.aborted) {
    throw new PluginError(PLUGIN_NAME, "STRATA_MQTT_START_ABORTED", "start was aborted (timeout or shutdown) before the head was listening");
  }
}
