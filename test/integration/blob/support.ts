import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import tls from "node:tls";
import { EventEmitter, once } from "node:events";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";

export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface Azurite {
  port: number;
  proc: ChildProcess;
  /** A client of Azurite itself (what reached the cloud). */
  client: BlobServiceClient;
  connectionString(port?: number): string;
  stop(): Promise<void>;
}

/** Azurite (Microsoft's Blob Storage emulator) in memory on 127.0.0.1, port chosen by the kernel. */
export async function startAzurite(): Promise<Azurite> {
  const bin = join(__dirname, "..", "..", "..", "..", "node_modules", "azurite", "dist", "src", "blob", "main.js");
  const proc = spawn(process.execPath, [bin, "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--loose"], { stdio: ["ignore", "pipe", "pipe"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        proc.stdout!.off("data", onData);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on("data", onData);
    proc.once("exit", (code) => reject(new Error(`azurite exited (${code}): ${out}`)));
  });
  proc.stdout!.resume();
  proc.stderr!.resume();
  const connectionString = (p = port): string => `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${p}/${AZURITE_ACCOUNT};`;
  return {
    port,
    proc,
    client: BlobServiceClient.fromConnectionString(connectionString()),
    connectionString,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGCONT");
      proc.kill("SIGTERM");
      await once(proc, "exit");
    },
  };
}

/**
 * Makes this test process trust `ca` (the gateway's dev PKI) for every TLS client, the Azure SDK's included:
 * its options take no https agent, and node's default CA list is what its agents use.
 */
export function trustCa(ca: string): void {
  const current = tls.getCACertificates("default");
  if (!current.includes(ca)) tls.setDefaultCACertificates([...current, ca]);
}

/** `@azure/storage-blob` against a gateway's blob plugin: path-style `https://host:port{prefix}/{account}`. */
export function gatewayBlobClient(opts: { host: string; port: number; ca: string; account: string; key: string; prefix?: string }): { client: BlobServiceClient; url: string; close(): void } {
  trustCa(opts.ca);
  const url = `https://${opts.host}:${opts.port}${opts.prefix ?? "/blob"}/${opts.account}`;
  const client = new BlobServiceClient(url, new StorageSharedKeyCredential(opts.account, opts.key), { retryOptions: { maxTries: 1 } });
  return { client, url, close: () => undefined };
}

/** An HTTP proxy in front of Azurite that counts requests by kind and can drop or hold them (an outage, a stall). */
export interface CountingProxy {
  port: number;
  counts: { putBlock: number; putBlockDone: number; putBlockList: number; other: number };
  /** While true, every request's socket is destroyed without an answer. */
  down: boolean;
  /** While true, new requests are parked unanswered (a stalled upstream); release() drops them. */
  hold: boolean;
  /** Sets `hold` once this many Put Block answers went back. */
  holdAfterPutBlocks?: number;
  /** Requests forwarded and not yet answered. */
  inflight: number;
  /** "parked" when a request is held; "idle" when nothing is in flight; "putBlockDone". */
  events: EventEmitter;
  release(): void;
  close(): Promise<void>;
}

export async function countingProxy(targetPort: number): Promise<CountingProxy> {
  const agent = new http.Agent({ keepAlive: true });
  const parked: http.IncomingMessage[] = [];
  const self: CountingProxy = {
    port: 0,
    counts: { putBlock: 0, putBlockDone: 0, putBlockList: 0, other: 0 },
    down: false,
    hold: false,
    inflight: 0,
    events: new EventEmitter(),
    release() {
      this.hold = false;
      for (const r of parked.splice(0)) r.socket.destroy();
    },
    close: async () => {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = http.createServer((req, res) => {
    if (self.down) {
      req.socket.destroy();
      return;
    }
    if (self.hold) {
      parked.push(req);
      self.events.emit("parked");
      return;
    }
    const q = req.url ?? "";
    const isBlock = req.method === "PUT" && /[?&]comp=block(&|$)/.test(q);
    if (isBlock) self.counts.putBlock++;
    else if (req.method === "PUT" && /[?&]comp=blocklist/.test(q)) self.counts.putBlockList++;
    else self.counts.other++;
    self.inflight++;
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      if (--self.inflight === 0) self.events.emit("idle");
    };
    const up = http.request({ host: "127.0.0.1", port: targetPort, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
      r.on("end", () => {
        if (isBlock && r.statusCode === 201) {
          self.counts.putBlockDone++;
          if (self.holdAfterPutBlocks !== undefined && self.counts.putBlockDone >= self.holdAfterPutBlocks) self.hold = true;
          self.events.emit("putBlockDone");
        }
        settle();
      });
    });
    up.on("error", () => {
      res.destroy();
      settle();
    });
    req.on("aborted", () => up.destroy());
    req.pipe(up);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  self.port = (server.address() as AddressInfo).port;
  return self;
}
