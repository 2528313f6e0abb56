// The real CoAP peer: Debian's libcoap3-bin `coap-client-notls`, driven as a child process, as a device
// would use it. Requests print the payload on stdout and an error response (`4.00 diagnostic`) on stderr.
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";

export const COAP_CLIENT = "coap-client-notls";

export function hasCoapClient(): boolean {
  return spawnSync(COAP_CLIENT, ["-h"], { stdio: "ignore" }).error === undefined;
}

export const SKIP_WITHOUT_PEER = hasCoapClient() ? false : "needs the Debian package libcoap3-bin (coap-client-notls): sudo apt-get install -y libcoap3-bin";

export interface CoapResult {
  /** Response payload (2.xx), trimmed. */
  out: string;
  /** `<code> <diagnostic>` of an error response, trimmed; empty on success. */
  err: string;
}

export interface RequestOptions {
  method?: "get" | "post" | "put" | "delete";
  payload?: string;
  /** Content-Format: a name libcoap knows (`json`, `text`, `senml+json`) or a number. */
  format?: string;
}

/** One request: `coap-client-notls -m <method> [-t format] [-e payload] coap://host:port/path`. */
export function coapRequest(port: number, path: string, o: RequestOptions = {}, host = "127.0.0.1"): Promise<CoapResult> {
  const args = ["-m", o.method ?? "get", "-B", "10"];
  if (o.format !== undefined) args.push("-t", o.format);
  if (o.payload !== undefined) args.push("-e", o.payload);
  args.push(`coap://${host}:${port}${path}`);
  return new Promise((resolve, reject) => {
    execFile(COAP_CLIENT, args, { timeout: 15_000 }, (error, stdout, stderr) => {
      if (error && error.killed) return reject(new Error(`${COAP_CLIENT} ${args.join(" ")} timed out`));
      resolve({ out: stdout.trim(), err: stderr.trim() });
    });
  });
}

/** An observation (`-s seconds`): each notification is a line on stdout. */
export class CoapObserver {
  private buffer = "";
  private readonly lines: string[] = [];
  private waiters: Array<{ match: (l: string) => boolean; resolve: (l: string) => void }> = [];
  readonly exited: Promise<number | null>;
  /** The error response (`5.03 …`) that ended the observation, as libcoap printed it. */
  readonly ended: Promise<string>;

  private constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line === "") continue;
        const w = this.waiters.find((x) => x.match(line));
        if (w) {
          this.waiters = this.waiters.filter((x) => x !== w);
          w.resolve(line);
        } else {
          this.lines.push(line);
        }
      }
    });
    child.stderr!.setEncoding("utf8");
    let errText = "";
    this.ended = new Promise((resolve) => {
      child.stderr!.on("data", (chunk: string) => {
        errText += chunk;
        // libcoap prints an error response as `<code> <diagnostic>`; a non-2.xx notification ends the observation.
        const m = /^([45]\.\d\d)\b.*$/m.exec(errText);
        if (m) resolve(m[0]);
      });
    });
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  static start(port: number, path: string, seconds = 60, host = "127.0.0.1"): CoapObserver {
    return new CoapObserver(spawn(COAP_CLIENT, ["-s", String(seconds), "-w", "-B", String(seconds + 5), `coap://${host}:${port}${path}`], { stdio: ["ignore", "pipe", "pipe"] }));
  }

  /** The first notification line (already seen or still to come) that `match` accepts. */
  next(match: (line: string) => boolean): Promise<string> {
    const i = this.lines.findIndex(match);
    if (i >= 0) return Promise.resolve(this.lines.splice(i, 1)[0]!);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    return this.exited;
  }
}
