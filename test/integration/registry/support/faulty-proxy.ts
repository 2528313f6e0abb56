import http from "node:http";
import type { AddressInfo } from "node:net";

/** What the proxy does to blob GET bodies. */
export type FaultMode = "pass" | "slow" | "flip" | "truncate" | "down";

/**
 * A tiny HTTP proxy in front of an upstream registry that misbehaves on demand: slows blob bodies (to see
 * a second client get bytes while the first fetch runs), flips a byte, truncates, or refuses connections.
 * Records when each blob body finished going out.
 */
export interface FaultyProxy {
  readonly url: string;
  mode: FaultMode;
  /** Delay per 64 KiB chunk in "slow" mode. */
  slowChunkMs: number;
  /** performance.now() at which the last byte of each blob body left the proxy, by digest. */
  readonly bodyEnd: Map<string, number>;
  close(): Promise<void>;
}

export async function startFaultyProxy(upstream: string): Promise<FaultyProxy> {
  const target = new URL(upstream);
  const sockets = new Set<import("node:net").Socket>();
  const state: FaultyProxy = {
    url: "",
    mode: "pass",
    slowChunkMs: 15,
    bodyEnd: new Map(),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = http.createServer((req, res) => {
    if (state.mode === "down") {
      req.socket.destroy();
      return;
    }
    const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? "");
    const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } }, async (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (!blob || req.method !== "GET" || ur.statusCode !== 200 || state.mode === "pass") {
        ur.pipe(res);
        ur.on("end", () => blob && state.bodyEnd.set(blob[1]!, performance.now()));
        return;
      }
      const chunks: Buffer[] = [];
      for await (const c of ur as AsyncIterable<Buffer>) chunks.push(c);
      const body = Buffer.concat(chunks);
      if (state.mode === "flip") {
        body[body.length >> 1] ^= 0x01;
        res.end(body);
      } else if (state.mode === "truncate") {
        res.write(body.subarray(0, body.length >> 1), () => res.destroy());
        return;
      } else {
        for (let off = 0; off < body.length; off += 65536) {
          // The last chunk completes the body (Content-Length): the fetch ends when it is written.
          if (off + 65536 >= body.length) state.bodyEnd.set(blob[1]!, performance.now());
          if (!res.write(body.subarray(off, off + 65536))) await new Promise((r) => res.once("drain", r));
          if (off + 65536 < body.length) await new Promise((r) => setTimeout(r, state.slowChunkMs));
        }
        res.end();
        return;
      }
      state.bodyEnd.set(blob[1]!, performance.now());
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  (state as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
