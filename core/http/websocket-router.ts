import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { StrataError } from "../errors.js";
import type { Logger } from "../log.js";

/** Takes over an upgraded WebSocket; `req` is the upgrade request (headers, TLS socket, peer certificate). */
export type WebSocketHandler = (ws: WebSocket, req: IncomingMessage) => void;

/**
 * Routes WebSocket upgrades on the one HTTPS listener by path and subprotocol. The server SELECTS the
 * subprotocol (the Azure SDKs fail to open when it selects none, spikes.md §5): the first one the client
 * offers that has a handler on that path wins. Unknown path → 404, no matching subprotocol → 400, both
 * written on the raw socket before it is closed, so other connections are not disturbed.
 */
export class WebSocketRouter {
  private readonly byPath = new Map<string, Map<string, WebSocketHandler>>();
  private readonly selected = new WeakMap<IncomingMessage, string>();
  private readonly wss: WebSocketServer;

  constructor(private readonly log: Logger, maxPayload: number) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload,
      perMessageDeflate: false,
      handleProtocols: (_offered, req) => this.selected.get(req) ?? false,
    });
  }

  /** Adds a handler; returns a function that removes it (a plugin's stop()). */
  add(path: string, subprotocol: string, handler: WebSocketHandler): () => void {
    if (!path.startsWith("/")) {
      throw new StrataError("STRATA_HTTP_BAD_MOUNT", `websocket path "${path}" must start with "/"`);
    }
    if (!subprotocol) {
      throw new StrataError("STRATA_HTTP_BAD_MOUNT", `websocket on "${path}" needs a subprotocol name, e.g. "mqtt"`);
    }
    let handlers = this.byPath.get(path);
    if (!handlers) this.byPath.set(path, (handlers = new Map()));
    if (handlers.has(subprotocol)) {
      throw new StrataError(
        "STRATA_HTTP_MOUNT_CONFLICT",
        `websocket subprotocol "${subprotocol}" on "${path}" is already mounted by another plugin; ` +
          `each path and subprotocol pair has one owner`,
      );
    }
    handlers.set(subprotocol, handler);
    return () => {
      if (handlers.get(subprotocol) !== handler) return;
      handlers.delete(subprotocol);
      if (handlers.size === 0) this.byPath.delete(path);
    };
  }

  /** The server's 'upgrade' listener. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = pathOf(req.url);
    const offered = offeredProtocols(req.headers["sec-websocket-protocol"]);
    const handlers = this.byPath.get(path);
    const isWebSocket = (req.headers.upgrade ?? "").toLowerCase() === "websocket";
    const where = { path, protocols: offered, remoteAddress: req.socket.remoteAddress };
    if (!handlers || !isWebSocket) {
      this.log.warn(where, "websocket upgrade refused: no handler for path");
      return reject(socket, 404, "Not Found");
    }
    const chosen = offered.find((p) => handlers.has(p));
    if (chosen === undefined) {
      this.log.warn({ ...where, supported: [...handlers.keys()] }, "websocket upgrade refused: no matching subprotocol");
      return reject(socket, 400, "Bad Request");
    }
    const handler = handlers.get(chosen)!;
    this.selected.set(req, chosen);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      try {
        handler(ws, req);
      } catch (err) {
        this.log.error({ ...where, protocol: chosen, err }, "websocket handler failed");
        ws.terminate();
      }
    });
  }

  /** Asks every open WebSocket to close (1001 going away). */
  closeAll(): void {
    for (const ws of this.wss.clients) ws.close(1001, "server shutting down");
  }

  /** Drops every WebSocket that has not closed yet. */
  terminateAll(): void {
    for (const ws of this.wss.clients) ws.terminate();
  }

  get openCount(): number {
    return this.wss.clients.size;
  }
}

function pathOf(url: string | undefined): string {
  const raw = url ?? "/";
  const q = raw.indexOf("?");
  return q === -1 ? raw : raw.slice(0, q);
}

function offeredProtocols(header: string | undefined): string[] {
  if (!header) return [];
  return header.split(",").map((p) => p.trim()).filter((p) => p.length > 0);
}

/** Writes a minimal HTTP response on the raw upgrade socket, then closes it once written. */
function reject(socket: Duplex, status: number, reason: string): void {
  // After an upgrade node no longer listens for socket errors; a reset while we answer must not crash.
  socket.on("error", () => socket.destroy());
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${reason}\n`;
  socket.once("finish", () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
