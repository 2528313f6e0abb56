import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A real Debian docker-registry (Distribution 2.8) for tests and the bench: its own config and storage in
 * a temp dir, http (or https) on 127.0.0.1 and a free port, access log captured so a test can count
 * upstream requests. Never the packaged service config (that listens on :5000 on every interface).
 */
export interface DistributionOptions {
  /** Proxy mode (pull-through cache) in front of this remote URL. */
  proxyRemote?: string;
  /** Serve TLS with these PEM files. */
  tls?: { certFile: string; keyFile: string };
  /** Extra CA for a proxy-mode remote over TLS (passed via SSL_CERT_FILE). */
  remoteCaFile?: string;
}

export interface Distribution {
  readonly port: number;
  /** The docker-registry process (the bench reads its CPU time). */
  readonly pid: number;
  /** `http://127.0.0.1:PORT` or `https://…` */
  readonly url: string;
  /** `127.0.0.1:PORT` for skopeo's docker:// refs. */
  readonly hostPort: string;
  readonly dir: string;
  /** Access-log request lines seen so far, e.g. `GET /v2/x/blobs/sha256:… 200`. */
  requests(): { method: string; path: string; status: number }[];
  /** Upstream GETs of blobs so far (optionally of one digest). */
  blobGets(digest?: string): number;
  close(): Promise<void>;
}

export async function startDistribution(opts: DistributionOptions = {}): Promise<Distribution> {
  const dir = mkdtempSync(join(tmpdir(), "strata-distribution-"));
  const lines = [
    "version: 0.1",
    "log:",
    "  level: info",
    "  accesslog:",
    "    disabled: false",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${join(dir, "data")}`,
    "  delete:",
    "    enabled: true",
    "http:",
    "  addr: 127.0.0.1:0",
    "  secret: strata-test-secret",
    ...(opts.tls ? ["  tls:", `    certificate: ${opts.tls.certFile}`, `    key: ${opts.tls.keyFile}`] : []),
    ...(opts.proxyRemote ? ["proxy:", `  remoteurl: ${opts.proxyRemote}`] : []),
  ];
  writeFileSync(join(dir, "config.yml"), lines.join("\n") + "\n");
  const child: ChildProcess = spawn("docker-registry", ["serve", join(dir, "config.yml")], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...(opts.remoteCaFile ? { SSL_CERT_FILE: opts.remoteCaFile } : {}) },
  });
  const log: string[] = [];
  let buffered = "";
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        log.push(line);
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
        if (m) resolve(Number(m[1]));
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`docker-registry exited (${code}) before listening:\n${log.join("\n")}`)));
    child.once("error", reject);
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const scheme = opts.tls ? "https" : "http";
  const requests = (): { method: string; path: string; status: number }[] => {
    const out: { method: string; path: string; status: number }[] = [];
    for (const l of log) {
      // Combined log format: 127.0.0.1 - - [date] "GET /v2/… HTTP/1.1" 200 1234 "" "agent"
      const m = /"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP\/[\d.]+" (\d{3})/.exec(l);
      if (m) out.push({ method: m[1]!, path: m[2]!, status: Number(m[3]) });
    }
    return out;
  };
  return {
    port,
    pid: child.pid!,
    url: `${scheme}://127.0.0.1:${port}`,
    hostPort: `127.0.0.1:${port}`,
    dir,
    requests,
    blobGets(digest) {
      return requests().filter((r) => r.method === "GET" && /\/blobs\/sha256:/.test(r.path) && (!digest || r.path.endsWith(digest))).length;
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
