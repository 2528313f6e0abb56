import https from "node:https";
import tls from "node:tls";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyPluginCallback,
  type FastifyPluginOptions,
  type FastifyRegisterOptions,
  type RouteOptions,
} from "fastify";
import { StrataError } from "../errors.js";
import type { HandshakeGate } from "../listeners.js";
import { silentLogger, type Logger } from "../log.js";
import { listenOn, type BoundAddress } from "./listen.js";
import { RawMounts, type RawHandler } from "./raw-mounts.js";
import { WebSocketRouter, type WebSocketHandler } from "./websocket-router.js";

/** PEM material for the listener: the server certificate (or its chain: server first), its key, and the CAs client certificates are checked against. */
export interface TlsMaterial {
  cert: string;
  key: string;
  ca?: string;
}

export interface HttpFrontOptions {
  tls: TlsMaterial;
  /** `[listen] address`. Default 127.0.0.1. */
  address?: string;
  /** `[listen] https`. Default 443; 0 lets the kernel choose (tests). */
  port?: number;
  logger?: Logger;
  /** How long close() waits for requests and WebSockets to finish before dropping them. Default 3000 ms. */
  closeTimeoutMs?: number;
  /** Largest WebSocket message accepted. Default 8 MiB (IoT Hub: 256 KiB MQTT, 1 MiB AMQP, plus framing). */
  wsMaxPayload?: number;
  /** Largest body fastify routes parse. Default 1 MiB (raw mounts are not limited: they stream). */
  bodyLimit?: number;
  /** The gateway's cap on TLS handshakes in progress (core/listeners.ts); none when absent. */
  handshakes?: Pick<HandshakeGate, "guard">;
}

/**
 * Core's one HTTPS listener (`[listen] https`). Plugins mount fastify routes before listen(), raw streaming
 * handlers by path prefix, and WebSocket handlers by path and subprotocol (MQTT and AMQP over WebSocket
 * share `/$iothub/websocket`). Client certificates are requested but not required, so X.509 device auth can
 * read the peer certificate (see peerCertificate()) while SAS clients connect without one.
 */
export class HttpFront {
  private readonly log: Logger;
  private readonly address: string;
  private readonly port: number;
  private readonly closeTimeoutMs: number;
  private readonly app: FastifyInstance;
  private readonly server: https.Server;
  private readonly raw = new RawMounts();
  private readonly ws: WebSocketRouter;
  private readonly sockets = new Set<Socket>();
  private ca: string | undefined;
  private sealed = false;
  private bound: BoundAddress | undefined;
  private closing: Promise<void> | undefined;

  constructor(opts: HttpFrontOptions) {
    this.log = opts.logger ?? silentLogger();
    this.address = opts.address ?? "127.0.0.1";
    this.port = opts.port ?? 443;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 3000;
    this.ca = opts.tls.ca;
    this.ws = new WebSocketRouter(this.log, opts.wsMaxPayload ?? 8 * 1024 * 1024);
    checkTls(opts.tls);
    this.server = https.createServer({
      cert: opts.tls.cert,
      key: opts.tls.key,
      ca: opts.tls.ca,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
      // Blob and image layers over slow plant links take longer than node's 5-minute whole-request default;
      // headersTimeout (60 s) still bounds clients that never finish their headers.
      requestTimeout: 0,
    });
    opts.handshakes?.guard(this.server); // before our own 'connection' listener, which must see every socket
    // Raw mounts are dispatched before fastify sees the request, so their bodies are never parsed or buffered.
    this.app = Fastify({
      loggerInstance: this.log,
      // Per-request lines would flood the journal; plugins log what matters to them.
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: opts.bodyLimit ?? 1024 * 1024,
      serverFactory: (fastifyHandler) => {
        this.server.on("request", (req: IncomingMessage, res: ServerResponse) => {
          const mount = this.raw.match(req.url);
          if (mount) this.runRaw(mount.prefix, mount.handler, req, res);
          else fastifyHandler(req, res);
        });
        return this.server as unknown as import("node:http").Server;
      },
    }) as unknown as FastifyInstance;
    this.server.on("upgrade", (req: IncomingMessage, socket, head: Buffer) => this.ws.handleUpgrade(req, socket, head));
    this.server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    this.server.on("tlsClientError", (err: Error, socket: tls.TLSSocket) => {
      this.log.debug({ err, remoteAddress: socket.remoteAddress }, "tls handshake failed");
    });
  }

  /** Adds a fastify route. Only before listen(). */
  route(opts: RouteOptions): void {
    this.assertNotSealed(`route ${String(opts.method)} ${opts.url}`);
    this.app.route(opts);
  }

  /** Registers a fastify plugin (encapsulated, optionally under `prefix`). Only before listen(). */
  register<O extends FastifyPluginOptions>(plugin: FastifyPluginAsync<O>, opts?: FastifyRegisterOptions<O>): void;
  register<O extends FastifyPluginOptions>(plugin: FastifyPluginCallback<O>, opts?: FastifyRegisterOptions<O>): void;
  register<O extends FastifyPluginOptions>(
    plugin: FastifyPluginAsync<O> | FastifyPluginCallback<O>,
    opts: FastifyRegisterOptions<O> = {} as FastifyRegisterOptions<O>,
  ): void {
    this.assertNotSealed(`plugin ${plugin.name || "(anonymous)"}`);
    this.app.register(plugin as FastifyPluginAsync<O>, opts);
  }

  /**
   * Hands every request whose path is `prefix` or below it to `handler` untouched: no body parsing, so
   * proxies and blob streams see the request as it arrives and write responses of any size (Range included).
   * The longest matching prefix wins over shorter ones and over fastify routes. Allowed before and after
   * listen(); returns a function that unmounts it.
   */
  mountRaw(prefix: string, handler: RawHandler): () => void {
    return this.raw.add(prefix, handler);
  }

  /**
   * Hands WebSocket upgrades on `path` that offer `subprotocol` to `handler`, after selecting that subprotocol
   * in the handshake. Allowed before and after listen(); returns a function that unmounts it.
   */
  websocket(path: string, subprotocol: string, handler: WebSocketHandler): () => void {
    return this.ws.add(path, subprotocol, handler);
  }

  /** Binds `[listen] address` and port; rejects with a STRATA_LISTEN_* error naming the port and the fix. */
  async listen(): Promise<BoundAddress> {
    if (this.bound) return this.bound;
    this.assertNotSealed("listen()");
    this.sealed = true;
    try {
      await this.app.ready();
    } catch (err) {
      throw new StrataError(
        "STRATA_HTTP_MOUNT_FAILED",
        `a route or plugin mounted on the https front failed to load: ${(err as Error).message}; ` +
          `fix the plugin that mounted it`,
        { cause: err },
      );
    }
    this.bound = await listenOn(this.server, this.address, this.port, "https front");
    this.log.info({ address: this.bound.address, port: this.bound.port }, "https front listening");
    return this.bound;
  }

  /** The bound address and port, once listening. */
  boundAddress(): BoundAddress | undefined {
    return this.bound;
  }

  /**
   * Swaps the server certificate for new connections; connections already open keep the old one.
   * `ca` (client certificate trust) stays as it was when omitted.
   */
  setCertificate(cert: string, key: string, ca?: string): void {
    const nextCa = ca ?? this.ca;
    checkTls({ cert, key, ca: nextCa });
    this.server.setSecureContext({ cert, key, ca: nextCa, minVersion: "TLSv1.2" });
    this.ca = nextCa;
    this.log.info({}, "https front certificate replaced");
  }

  /**
   * Stops listening, closes WebSockets (1001) and idle keep-alive connections, and drops whatever is still
   * open after closeTimeoutMs. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    this.sealed = true;
    const serverClosed = this.server.listening
      ? new Promise<void>((resolve) => this.server.close(() => resolve()))
      : Promise.resolve();
    this.ws.closeAll();
    this.server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.closeTimeoutMs);
    });
    const outcome = await Promise.race([serverClosed.then(() => "closed" as const), deadline]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      this.log.warn({ open: this.sockets.size, timeoutMs: this.closeTimeoutMs }, "https front close timed out, dropping connections");
      this.ws.terminateAll();
      for (const socket of this.sockets) socket.destroy();
      await serverClosed;
    }
    await this.app.close();
    this.log.info({}, "https front closed");
  }

  private runRaw(prefix: string, handler: RawHandler, req: IncomingMessage, res: ServerResponse): void {
    const fail = (err: unknown): void => {
      this.log.error({ err, prefix, url: req.url }, "raw handler failed");
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end();
      } else {
        res.destroy();
      }
    };
    try {
      const result = handler(req, res);
      if (result instanceof Promise) result.then(undefined, fail);
    } catch (err) {
      fail(err);
    }
  }

  private assertNotSealed(what: string): void {
    if (this.sealed) {
      throw new StrataError(
        "STRATA_HTTP_ALREADY_LISTENING",
        `cannot add ${what}: the https front is already listening (or closed); mount fastify routes and ` +
          `plugins in register() or before start() returns, or use mountRaw()/websocket(), which work at any time`,
      );
    }
  }
}

/** The client certificate the peer presented on this request's TLS connection, if any (X.509 device auth). */
export function peerCertificate(req: IncomingMessage): tls.PeerCertificate | undefined {
  const socket = req.socket as tls.TLSSocket;
  if (typeof socket.getPeerCertificate !== "function") return undefined;
  const cert = socket.getPeerCertificate();
  return cert && Object.keys(cert).length > 0 ? cert : undefined;
}

function checkTls(material: TlsMaterial): void {
  try {
    tls.createSecureContext({ cert: material.cert, key: material.key, ca: material.ca });
  } catch (err) {
    throw new StrataError(
      "STRATA_HTTP_TLS_INVALID",
      `https front TLS material is unusable (${(err as Error).message}); check that [tls] cert and key are PEM ` +
        `and that the key belongs to the certificate`,
      { cause: err },
    );
  }
}
