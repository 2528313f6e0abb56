import tls from "node:tls";
import {
  inject, injectable, isStrataError, listenOn, meterHead, PluginError, TOKENS,
  type HttpFront, type Metrics, type Hub, type Identities, type Listeners, type Logger, type Pki, type Plugin, type StrataConfig,
} from "../../core/index.js";
import type { AmqpConfig } from "./config.js";
import { AmqpHead, type PeerInfo } from "./head.js";

export const PLUGIN_NAME = "amqp";
/** Where the Azure SDKs open AMQP over WebSocket (spikes.md §5). */
export const WEBSOCKET_PATH = "/$iothub/websocket";
export const WEBSOCKET_SUBPROTOCOL = "AMQPWSB10";

/**
 * The AMQP head (IoT Hub's AMQP 1.0 device and service protocol): TLS on `[listen] amqp` and WebSocket on
 * the HTTPS listener, both into one rhea container (head.ts).
 */
@injectable()
export class AmqpPlugin implements Plugin {
  private head: AmqpHead | undefined;
  private server: tls.Server | undefined;
  private unmountWebSocket: (() => void) | undefined;
  private unwatchCertificate: (() => void) | undefined;

  constructor(
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.PluginConfig) private readonly config: AmqpConfig,
    @inject(TOKENS.Config) private readonly gateway: StrataConfig,
    @inject(TOKENS.Hub) private readonly hub: Hub,
    @inject(TOKENS.Identities) private readonly identities: Identities,
    @inject(TOKENS.HttpFront) private readonly front: HttpFront,
    @inject(TOKENS.Pki) private readonly pki: Pki,
    @inject(TOKENS.Listeners) private readonly listeners: Listeners,
    /** Optional: per-head counters on /metrics when the gateway has a registry (not in a bare plugin test). */
    @inject(TOKENS.Metrics, { isOptional: true }) private readonly metrics?: Metrics,
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    try {
      const { hub, identities } = meterHead(this.metrics, "amqp", { hub: this.hub, identities: this.identities });
      const head = new AmqpHead({
        hub,
        identities,
        config: this.config,
        log: this.log,
        isRoot: this.gateway.parent === undefined,
      });
      this.head = head;
      abortIfAsked(signal);
      if (this.config.tls) {
        // A client certificate is requested, not required, and not verified by TLS: Identities decides.
        const server = tls.createServer(
          { cert: this.pki.chain, key: this.pki.key, ca: this.pki.trustBundle, requestCert: true, rejectUnauthorized: false, minVersion: "TLSv1.2" },
          (socket) => head.accept(socket, { transport: "tls", remoteAddress: socket.remoteAddress, peerChain: peerChain(socket), peerVerified: socket.authorized }),
        );
        server.on("tlsClientError", (err, socket) => this.log.debug({ err, remoteAddress: socket.remoteAddress }, "amqp tls handshake failed"));
        this.listeners.handshakes.guard(server); // the gateway's cap on handshakes in progress (reconnect storms)
        this.server = server;
        // A renewed certificate or trust bundle (core/pki) applies to new connections; open ones keep theirs.
        this.unwatchCertificate = this.pki.onCertificateChanged((m) => {
          server.setSecureContext({ cert: m.cert, key: m.key, ca: m.ca, minVersion: "TLSv1.2" });
          this.log.info({}, "amqp tls certificate replaced");
        });
        const { address, amqp } = this.gateway.listen;
        const bound = await listenOn(server, address, amqp, "amqp head");
        this.listeners.report({ name: "amqp", address: bound.address, port: bound.port });
        this.log.info({ address: bound.address, port: bound.port }, "amqp listening");
        abortIfAsked(signal);
      }
      if (this.config.websocket) {
        this.unmountWebSocket = this.front.websocket(WEBSOCKET_PATH, WEBSOCKET_SUBPROTOCOL, (ws, req) => {
          const socket = req.socket as tls.TLSSocket;
          const peer: PeerInfo = { transport: "websocket", remoteAddress: socket.remoteAddress, peerChain: typeof socket.getPeerCertificate === "function" ? peerChain(socket) : [], peerVerified: socket.authorized === true };
          head.container.websocket_accept(ws as never, head.connectionOptions(peer) as never);
        });
      }
      head.start();
    } catch (err) {
      await this.stop();
      if (err instanceof PluginError) throw err;
      const code = isStrataError(err) ? err.code : "STRATA_AMQP_START_FAILED";
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
    await head?.close();
    await closed;
    if (server) this.listeners.remove("amqp");
  }
}

/** The TLS client certificate chain, leaf first, as DER (empty when the client sent none). */
export function peerChain(socket: tls.TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let cert = socket.getPeerCertificate(true) as tls.DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (cert && cert.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

function abortIfAsked(signal: AbortSignal): void {
  if (signal.aborted) {
    throw new PluginError(PLUGIN_NAME, "STRATA_AMQP_START_ABORTED", "start was aborted (timeout or shutdown) before the head was listening");
  }
}
