import type { Server } from "node:net";
import { StrataError } from "../errors.js";

/** How to get out of a bind failure: the same advice for every listener in the project. */
const BIND_FIX =
  "use another loopback address with --address 127.0.0.N, or set the ports in a config file [listen]";

/**
 * Turns a failed bind into a StrataError that names the listener, the address and port, and the fix.
 * Every listener (the HTTPS front, the MQTT and AMQP heads) reports bind failures through this, so an
 * operator sees one wording; a port that cannot be bound is an error, never a silent move to another port.
 */
export function bindError(what: string, address: string, port: number, err: unknown): StrataError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = `${address}:${port}`;
  switch (code) {
    case "EADDRINUSE":
      return new StrataError(
        "STRATA_LISTEN_PORT_IN_USE",
        `${what} cannot listen on ${where}: port ${port} is already in use on ${address}; ${BIND_FIX}`,
        { cause: err },
      );
    case "EACCES":
    case "EPERM":
      return new StrataError(
        "STRATA_LISTEN_PORT_DENIED",
        `${what} cannot listen on ${where}: permission denied for port ${port} ` +
          `(ports below 1024 need root or CAP_NET_BIND_SERVICE); ${BIND_FIX}`,
        { cause: err },
      );
    case "EADDRNOTAVAIL":
      return new StrataError(
        "STRATA_LISTEN_ADDRESS_UNAVAILABLE",
        `${what} cannot listen on ${where}: address ${address} is not assigned to this host ` +
          `(port ${port}); ${BIND_FIX}`,
        { cause: err },
      );
    default:
      return new StrataError(
        "STRATA_LISTEN_FAILED",
        `${what} cannot listen on ${where} (port ${port}): ${(err as Error | undefined)?.message ?? String(err)}; ` +
          `check [listen] address and ports`,
        { cause: err },
      );
  }
}

/** The address a server actually bound (port 0 resolved to the kernel's choice). */
export interface BoundAddress {
  address: string;
  port: number;
}

/**
 * Listens on `address:port` and resolves once listening; rejects with bindError's StrataError.
 * `what` names the listener in the error ("https front", "mqtt head").
 */
export function listenOn(server: Server, address: string, port: number, what = "listener"): Promise<BoundAddress> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off("listening", onListening);
      reject(bindError(what, address, port, err));
    };
    const onListening = (): void => {
      server.off("error", onError);
      const bound = server.address();
      if (bound && typeof bound === "object") resolve({ address: bound.address, port: bound.port });
      else resolve({ address, port });
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ host: address, port, exclusive: true });
  });
}
