// A TCP proxy on loopback between a child gateway and its parent, for link chaos: `cut()` drops every open
// connection at once (both sockets destroyed, as a pulled cable followed by a reset would) and refuses new
// ones until `restore()`. Point the child's `[parent] amqp_port` at `proxy.port` on the parent's own address,
// so the parent's server certificate (SAN = its IP) still matches what the child dialled.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface LinkProxyOptions {
  /** Address to listen on (use the parent's address so its certificate matches). */
  host: string;
  /** Port to listen on; 0 = any free one. */
  port?: number;
  targetHost: string;
  targetPort: number;
}

export interface LinkProxy {
  readonly host: string;
  readonly port: number;
  /** True between `cut()` and `restore()`. */
  readonly isCut: boolean;
  /** Connections accepted and forwarded so far (a reconnecting child raises it). */
  readonly accepted: number;
  /** Connections open right now. */
  readonly open: number;
  /** Drops every open connection and refuses new ones until `restore()`. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startLinkProxy(opts: LinkProxyOptions): Promise<LinkProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let isCut = false;
  let accepted = 0;
  const server: Server = createServer({ noDelay: true }, (client) => {
    if (isCut) {
      client.resetAndDestroy();
      return;
    }
    accepted++;
    const upstream = createConnection({ host: opts.targetHost, port: opts.targetPort, noDelay: true });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // Errors are expected here (resets on cut, a parent killed): either side ending ends the pair.
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const dropAll = () => {
    for (const [client, upstream] of [...pairs]) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    pairs.clear();
  };
  return {
    host: opts.host,
    port,
    get isCut() { return isCut; },
    get accepted() { return accepted; },
    get open() { return pairs.size; },
    cut() {
      isCut = true;
      dropAll();
    },
    restore() {
      isCut = false;
    },
    async close() {
      dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
