import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import tls from "node:tls";
import { once } from "node:events";
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

/** An HTTP proxy in front of Azurite that counts requests by kind and can drop every connection (an outage). */
export interface CountingProxy {
  port: number;
  counts: { putBlock: number; putBlockList: number; other: number };
  /** While true, every request's socket is destroyed without an answer. */
  down: boolean;
  close(): Promise<void>;
}

export async function countingProxy(targetPort: number): Promise<CountingProxy> {
  const agent = new http.Agent({ keepAlive: true });
  const self: CountingProxy = {
    port: 0,
    counts: { putBlock: 0, putBlockList: 0, other: 0 },
    down: false,
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
    const q = req.url ?? "";
    if (req.method === "PUT" && /[?&]comp=block(&|$)/.test(q)) self.counts.putBlock++;
    else if (req.method === "PUT" && /[?&]comp=blocklist/.test(q)) self.counts.putBlockList++;
    else self.counts.other++;
    const up = http.request({ host: "127.0.0.1", port: targetPort, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  self.port = (server.address() as AddressInfo).port;
  return self;
}

