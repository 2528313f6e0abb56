// Opening one AMQP connection to the parent: TLS on its AMQP port, or AMQP over WebSocket through its HTTPS
// port (one open port between layers is enough). Authentication is a separate step (cbs.ts).
import { isIP } from "node:net";
import { create_container, type Connection, type ConnectionOptions, type Container, type EventContext } from "rhea";
import WebSocket from "ws";
import { StrataError } from "../errors.js";
import { patchRheaBuffers, patchRheaDispositions } from "./rhea-dispositions.js";
import type { UpstreamTransport } from "./types.js";

export interface DialTarget {
  /** The parent's TLS name (its certificate must cover it). */
  hostname: string;
  /** Where to connect when `hostname` is not resolvable (a loopback alias in tests). */
  address?: string;
  amqpPort: number;
  httpsPort: number;
  /** PEM trust bundle: the hierarchy's root CA. */
  ca: string;
  /** AMQP container id (this gateway's device id). */
  containerId: string;
  /** Local idle timeout advertised to the parent; the link notices a dead parent after about this long. */
  idleTimeoutMs: number;
}

/** The WebSocket path and subprotocol IoT Hub (and the parent's HttpFront) serve AMQP on. */
export const WS_PATH = "/$iothub/websocket";
export const WS_SUBPROTOCOL = "AMQPWSB10";

/** TLS options that verify the parent: against the trust bundle, by name (no SNI for an IP, RFC 6066). */
function tlsOptions(target: DialTarget): { ca: string; servername?: string; rejectUnauthorized: true } {
  return { ca: target.ca, rejectUnauthorized: true, ...(isIP(target.hostname) ? {} : { servername: target.hostname }) };
}

/** Where a transport dials, for logs and state. */
export function dialAddress(target: DialTarget, transport: UpstreamTransport): string {
  const host = target.address ?? target.hostname;
  return transport === "amqps" ? `amqps://${host}:${target.amqpPort}` : `wss://${host}:${target.httpsPort}${WS_PATH}`;
}

/**
 * Opens a connection and resolves once the parent's AMQP `open` arrived. Rejects (and closes what it
 * opened) on a socket or TLS error, a refused open, or after `timeoutMs`.
 */
export function dial(target: DialTarget, transport: UpstreamTransport, timeoutMs: number): Promise<{ connection: Connection; container: Container }> {
  patchRheaDispositions();
  patchRheaBuffers();
  const container = create_container({ id: target.containerId });
  const host = target.address ?? target.hostname;
  const common = {
    hostname: target.hostname,
    container_id: target.containerId,
    reconnect: false,
    idle_time_out: target.idleTimeoutMs,
    // AMQP is frames answered by frames (transfer → disposition, credit → transfer): with Nagle's algorithm a
    // small frame waits for the parent's delayed ACK, up to ~40 ms a hop when traffic is light.
    tcp_no_delay: true,
  };
  let connection: Connection;
  if (transport === "amqps") {
    connection = container.connect({ ...common, ...tlsOptions(target), host, port: target.amqpPort, transport: "tls" });
  } else {
    const url = `wss://${host}:${target.httpsPort}${WS_PATH}`;
    const wsOptions = { ...tlsOptions(target), headers: { Host: `${target.hostname}:${target.httpsPort}` } };
    const details = container.websocket_connect(WebSocket as never)(url, [WS_SUBPROTOCOL], wsOptions);
    connection = container.connect({ ...common, connection_details: details } as unknown as ConnectionOptions);
  }
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      connection.removeListener("connection_open", onOpen);
      connection.removeListener("disconnected", onDown);
      connection.removeListener("connection_error", onDown);
      connection.removeListener("connection_close", onDown);
      // rhea prints to the console when a connection drops with no 'disconnected' listener; owners add theirs.
      connection.on("disconnected", () => undefined);
      if (!err) return resolve({ connection, container });
      abandon(connection);
      reject(err);
    };
    const onOpen = () => finish();
    const onDown = (ctx: EventContext) => finish(dialError(target, transport, ctx));
    const timer = setTimeout(
      () => finish(new StrataError("STRATA_UPSTREAM_CONNECT_TIMEOUT", `no AMQP open from the parent at ${dialAddress(target, transport)} within ${timeoutMs} ms; check [parent] address and ports and that the parent runs the amqp plugin`)),
      timeoutMs,
    );
    connection.on("connection_open", onOpen);
    connection.on("disconnected", onDown);
    connection.on("connection_error", onDown);
    connection.on("connection_close", onDown);
    // Unhandled link errors bubble to the container as an 'error' event, which would throw.
    container.on("error", () => undefined);
  });
}

/**
 * Closes a connection without waiting for the parent, and never throws. `abort_socket` also clears rhea's
 * heartbeat timers, which a bare socket.destroy() would leave running (and keep the process alive).
 */
export function abandon(connection: Connection): void {
  try {
    connection.close();
  } catch {
    // already closed: nothing to release
  }
  const c = connection as unknown as { socket?: { on?: (event: string, fn: () => void) => unknown }; abort_socket?: (socket: unknown) => void };
  const socket = c.socket;
  try {
    if (socket && typeof c.abort_socket === "function") c.abort_socket(socket);
  } catch {
    // the socket is gone already
  }
  // abort_socket removes rhea's 'error' listener, but a TLS socket that ends while still handshaking (the parent,
  // or a proxy in front of it, resetting the connection) emits its own error a tick later; unheard, it would
  // crash the gateway. The connection is abandoned, so that late error has nothing left to tell.
  if (socket && typeof socket.on === "function") socket.on("error", () => undefined);
}

function dialError(target: DialTarget, transport: UpstreamTransport, ctx: EventContext): StrataError {
  const cause = (ctx as { error?: unknown }).error ?? ctx.connection?.error;
  const detail = describeError(cause);
  return new StrataError(
    "STRATA_UPSTREAM_CONNECT",
    `cannot connect to the parent at ${dialAddress(target, transport)}: ${detail}; check [parent] hostname/address/ports and [tls] ca_file`,
    { cause },
  );
}

export function describeError(err: unknown): string {
  if (!err) return "connection closed";
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ? `${(err as NodeJS.ErrnoException).code}: ${err.message}` : err.message;
  if (typeof err === "object") {
    const e = err as { condition?: unknown; description?: unknown; message?: unknown; type?: unknown };
    if (e.condition) return `${String(e.condition)}${e.description ? `: ${String(e.description)}` : ""}`;
    if (e.message) return String(e.message);
  }
  return String(err);
}
