import type { Socket } from "node:net";
import type { Server as TlsServer, TLSSocket } from "node:tls";

/**
 * Where each listener of this gateway ended up (TOKENS.Listeners). Heads report their bound address here
 * so the CLI can print every address and tests can learn the port the kernel chose for `port = 0`.
 */
export interface BoundListener {
  /** "https", "mqtt", "amqp", … */
  name: string;
  address: string;
  port: number;
}

export interface ListenersOptions {
  /** `[listen] max_tls_handshakes`: TLS handshakes in progress at once, every TLS listener together. */
  maxTlsHandshakes?: number;
}

export class Listeners {
  private readonly bound = new Map<string, BoundListener>();
  /** One cap for every TLS listener of the gateway (the handshakes share its CPU); heads guard their servers with it. */
  readonly handshakes: HandshakeGate;

  constructor(opts: ListenersOptions = {}) {
    this.handshakes = new HandshakeGate(opts.maxTlsHandshakes !== undefined ? { limit: opts.maxTlsHandshakes } : {});
  }

  report(listener: BoundListener): void {
    this.bound.set(listener.name, { ...listener });
  }

  remove(name: string): void {
    this.bound.delete(name);
  }

  get(name: string): BoundListener | undefined {
    return this.bound.get(name);
  }

  all(): BoundListener[] {
    return [...this.bound.values()];
  }
}

export interface HandshakeStats {
  /** The cap (`[listen] max_tls_handshakes`). */
  limit: number;
  /** Handshakes running now. */
  inProgress: number;
  /** The most that ever ran at once (never above `limit`). */
  peakInProgress: number;
  /** Connections waiting for a slot now. */
  waiting: number;
  /** Connections that had to wait for a slot (since start). */
  deferred: number;
  /** Waiting connections dropped because no slot came within the wait timeout. */
  waitTimeouts: number;
  /** Admitted handshakes dropped because they did not finish within the handshake timeout. */
  handshakeTimeouts: number;
}

export interface HandshakeGateOptions {
  /** Handshakes in progress at once. Default 32. */
  limit?: number;
  /** How long a connection may wait for a slot before it is dropped. Default 10 s. */
  waitTimeoutMs?: number;
  /**
   * How long an admitted handshake may take. Default 10 s: with a cap, a client that stalls its handshake holds
   * a slot others need, so it is dropped long before node's own 120 s.
   */
  handshakeTimeoutMs?: number;
}

interface Waiting {
  admit(): void;
  timer: NodeJS.Timeout;
}

/**
 * Bounds the TLS handshakes in progress on a gateway's listeners. When a parent comes back after an outage,
 * every child and device below reconnects at once; each handshake costs a signature, and hundreds at once
 * would starve the event loop (and time out themselves). Connections beyond the cap wait in a FIFO, their
 * handshake not begun, until a handshake finishes, fails or its client goes away; a connection that waits too
 * long is dropped (its client retries with backoff) so the queue cannot grow without bound.
 */
export class HandshakeGate {
  private readonly limit: number;
  private readonly waitTimeoutMs: number;
  private readonly handshakeTimeoutMs: number;
  private inProgress = 0;
  /** Insertion-ordered: the first entry is the oldest waiter. */
  private readonly queue = new Set<Waiting>();
  private readonly counters = { peakInProgress: 0, deferred: 0, waitTimeouts: 0, handshakeTimeouts: 0 };

  constructor(opts: HandshakeGateOptions = {}) {
    this.limit = Math.max(1, opts.limit ?? 32);
    this.waitTimeoutMs = opts.waitTimeoutMs ?? 10_000;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  }

  stats(): HandshakeStats {
    return { limit: this.limit, inProgress: this.inProgress, waiting: this.queue.size, ...this.counters };
  }

  /**
   * Puts `server`'s handshakes under this gate: its TLS connection listener (node's, which starts the
   * handshake) runs only once a slot is free. Call right after creating the server, before adding
   * 'connection' listeners of your own (those run at once, so they still see every socket). close() on the
   * server first drops the connections still waiting, which would otherwise hold it open.
   */
  guard(server: TlsServer): void {
    const startHandshake = server.listeners("connection") as ((socket: Socket) => void)[];
    server.removeAllListeners("connection");
    /** Admitted sockets by peer address: 'secureConnection' and 'tlsClientError' hand us the TLS socket, not the raw one. */
    const running = new Map<string, () => void>();
    const waiting = new Set<Socket>();
    const finished = (tlsSocket: TLSSocket) => running.get(`${tlsSocket.remoteAddress}:${tlsSocket.remotePort}`)?.();
    server.on("secureConnection", finished);
    server.on("tlsClientError", (_err: Error, tlsSocket: TLSSocket) => finished(tlsSocket));

    server.on("connection", (raw: Socket) => {
      const key = `${raw.remoteAddress}:${raw.remotePort}`; // read now: the TLS socket takes the handle over
      // A reset while waiting must not throw (nothing else listens yet); 'close' follows and cleans up.
      raw.on("error", () => undefined);
      const admit = () => {
        waiting.delete(raw);
        if (raw.destroyed) return;
        this.inProgress++;
        this.counters.peakInProgress = Math.max(this.counters.peakInProgress, this.inProgress);
        let done = false;
        const release = () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (running.get(key) === release) running.delete(key);
          raw.off("close", release);
          this.inProgress--;
          this.pump();
        };
        const timer = setTimeout(() => {
          this.counters.handshakeTimeouts++;
          raw.destroy(); // ends the TLS socket too (tlsClientError → release)
          release();
        }, this.handshakeTimeoutMs);
        timer.unref();
        running.set(key, release);
        raw.once("close", release);
        for (const listener of startHandshake) listener.call(server, raw);
      };
      if (this.inProgress < this.limit && this.queue.size === 0) return admit();
      this.counters.deferred++;
      waiting.add(raw);
      const entry: Waiting = {
        admit,
        timer: setTimeout(() => {
          this.queue.delete(entry);
          waiting.delete(raw);
          this.counters.waitTimeouts++;
          raw.destroy();
        }, this.waitTimeoutMs),
      };
      entry.timer.unref();
      this.queue.add(entry);
      raw.once("close", () => {
        if (!this.queue.delete(entry)) return;
        clearTimeout(entry.timer);
        waiting.delete(raw);
      });
    });

    const close = server.close.bind(server);
    server.close = (callback?: (err?: Error) => void) => {
      for (const raw of [...waiting]) raw.destroy();
      return close(callback);
    };
  }

  /** Admits the oldest waiters while slots are free. */
  private pump(): void {
    while (this.inProgress < this.limit && this.queue.size > 0) {
      const next = this.queue.values().next().value!;
      this.queue.delete(next);
      clearTimeout(next.timer);
      next.admit();
    }
  }
}
