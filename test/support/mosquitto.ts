import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

/**
 * A real mosquitto for tests and the bench: its own generated config and folder, a free port on 127.0.0.1,
 * started and awaited until it listens, stoppable and restartable on the same port (outage tests).
 * Needs the Debian package mosquitto (guard tests with `needPeer("mosquitto")`).
 */
export interface MosquittoOptions {
  /** mosquitto's `max_queued_messages` (its default is 1000 per client; 0 = unlimited). */
  maxQueuedMessages?: number;
  /**
   * mosquitto's `max_inflight_messages` per client (default 20; 0 = unlimited). It is also the receive
   * maximum mosquitto announces to MQTT 5 clients, which bounds what a publisher may have unacknowledged.
   */
  maxInflightMessages?: number;
  /** `set_tcp_nodelay true`: without it mosquitto's small PUBACKs wait on Nagle and the peer's delayed ACK. */
  tcpNoDelay?: boolean;
  /** Keep sessions and queued messages across a (graceful) restart, in the broker's temp folder. */
  persistence?: boolean;
  /** Serve MQTT over TLS (the URL becomes mqtts://) with this certificate chain and key (PEM files). */
  tls?: { certFile: string; keyFile: string };
  /** Require a username and password (anonymous refused): user → password, hashed with mosquitto_passwd. */
  users?: Readonly<Record<string, string>>;
  /** Extra lines for mosquitto.conf. */
  extraConfig?: readonly string[];
}

export interface Mosquitto {
  readonly host: string;
  readonly port: number;
  /** `mqtt://127.0.0.1:<port>`, or `mqtts://` with `tls`. */
  readonly url: string;
  /** The broker's folder (config, persistence, log). */
  readonly dir: string;
  readonly running: boolean;
  /** Graceful stop (SIGTERM: a persistent broker writes its sessions); resolves when the process exited. */
  stop(): Promise<void>;
  /** Start again on the same port, after `stop()`. */
  start(): Promise<void>;
  /** Stop and remove the folder. Idempotent. */
  close(): Promise<void>;
}

/** Something with node:test's `after` (a TestContext, or a suite's `t`). */
export interface AfterHook {
  after(fn: () => unknown): void;
}

/** Start a mosquitto; with `t`, it is closed when the test ends. */
export async function startMosquitto(t?: AfterHook, opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const broker = new MosquittoProcess(opts);
  t?.after(() => broker.close());
  // A port probed free may be taken before mosquitto binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    try {
      await broker.bindFreshPort();
      return broker;
    } catch (err) {
      if (!(err instanceof PortInUse) || attempt >= 5) {
        await broker.close();
        throw err;
      }
    }
  }
}

class PortInUse extends Error {}

class MosquittoProcess implements Mosquitto {
  readonly host = "127.0.0.1";
  readonly dir = mkdtempSync(join(tmpdir(), "strata-mosquitto-"));
  port = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly opts: MosquittoOptions) {}

  get url(): string {
    return `${this.opts.tls ? "mqtts" : "mqtt"}://${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  async bindFreshPort(): Promise<void> {
    this.port = await freePort();
    await this.start();
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error("mosquitto helper: start() after close()");
    if (this.child) return;
    const conf = join(this.dir, "mosquitto.conf");
    if (this.opts.users) this.writePasswords(this.opts.users);
    writeFileSync(conf, this.config());
    const child = spawn("mosquitto", ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    child.once("exit", () => {
      if (this.child === child) this.child = undefined;
    });
    // mosquitto logs to stderr; "running" comes after every listener is bound, an error before it exits.
    let log = "";
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        log += chunk.toString();
        if (/ running\b/.test(log)) {
          child.stderr!.off("data", onData);
          child.stderr!.resume();
          resolve();
        }
      };
      child.stderr!.on("data", onData);
      child.once("exit", (code) => {
        if (/Address already in use/i.test(log)) reject(new PortInUse(`port ${this.port} in use`));
        else reject(new Error(`mosquitto exited with ${code} before it listened on ${this.port}: ${log.trim()}`));
      });
      child.once("error", reject);
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill("SIGTERM");
    await this.exited;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private writePasswords(users: Readonly<Record<string, string>>): void {
    const file = join(this.dir, "passwd");
    writeFileSync(file, "", { mode: 0o600 });
    for (const [user, password] of Object.entries(users)) {
      const r = spawnSync("mosquitto_passwd", ["-b", file, user, password], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`mosquitto_passwd failed for ${user}: ${r.stderr || r.error?.message}`);
    }
  }

  private config(): string {
    const o = this.opts;
    const lines = [
      `listener ${this.port} ${this.host}`,
      `allow_anonymous ${o.users ? "false" : "true"}`,
      // Running as root, mosquitto would switch to the `mosquitto` user and lose access to our folder.
      `user ${userInfo().username}`,
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      "log_type notice",
      "log_type information",
      "connection_messages false",
      `persistence ${o.persistence ? "true" : "false"}`,
    ];
    if (o.persistence) lines.push(`persistence_location ${this.dir}/`, "autosave_interval 0");
    if (o.maxQueuedMessages !== undefined) lines.push(`max_queued_messages ${o.maxQueuedMessages}`);
    if (o.maxInflightMessages !== undefined) lines.push(`max_inflight_messages ${o.maxInflightMessages}`);
    if (o.tcpNoDelay) lines.push("set_tcp_nodelay true");
    if (o.tls) lines.push(`certfile ${o.tls.certFile}`, `keyfile ${o.tls.keyFile}`);
    if (o.users) lines.push(`password_file ${join(this.dir, "passwd")}`);
    lines.push(...(o.extraConfig ?? []));
    return lines.join("\n") + "\n";
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
