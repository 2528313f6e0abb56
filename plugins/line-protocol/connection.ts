// One TCP connection of the line protocol: splits lines, feeds them to the translator one at a time (the
// socket stops reading while too many wait: back-pressure), answers acks, and carries commands back.
import type { Socket } from "node:net";
import { isStrataError, type Logger, type Translator } from "../../core/index.js";
import type { LineCommand } from "./converters.js";

export interface LineConnectionOptions {
  translator: Translator<string, LineCommand>;
  log: Logger;
  ack: boolean;
  maxLineBytes: number;
  maxPendingLines: number;
  /** A line from this connection was taken for `deviceId`: commands for it go here now. */
  onDevice(deviceId: string, conn: LineConnection): void;
  onClose(conn: LineConnection): void;
}

interface PendingMethod {
  resolve(answer: { status: number; payload: unknown }): void;
  reject(err: Error): void;
}

export class LineConnection {
  private partial = "";
  private skipping = false;
  private readonly queue: string[] = [];
  private processing = false;
  private nextRid = 1;
  private readonly methods = new Map<number, PendingMethod>();
  readonly address: string;

  constructor(readonly socket: Socket, private readonly o: LineConnectionOptions) {
    this.address = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setEncoding("utf8");
    socket.setNoDelay(true);
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("error", (err) => o.log.debug({ err, address: this.address }, "line-protocol connection error"));
    socket.on("close", () => {
      for (const m of this.methods.values()) m.reject(new Error("the device's connection closed"));
      this.methods.clear();
      o.onClose(this);
    });
  }

  get open(): boolean {
    return !this.socket.destroyed;
  }

  /** Writes one command line; a method waits for the device's `{"rid":…,"status":…,"payload":…}` line. */
  async send(cmd: LineCommand, signal: AbortSignal, timeoutMs: number): Promise<unknown> {
    if (!this.open) throw new Error("the device's connection is closed");
    if (!("method" in cmd)) {
      this.socket.write(JSON.stringify(cmd) + "\n");
      return undefined;
    }
    const rid = this.nextRid++;
    const answer = new Promise<{ status: number; payload: unknown }>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      const onAbort = (): void => finish(new Error("aborted"));
      const finish = (err?: Error, value?: { status: number; payload: unknown }): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.methods.delete(rid);
        if (err) reject(err);
        else resolve(value!);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.methods.set(rid, { resolve: (v) => finish(undefined, v), reject: (e) => finish(e) });
    });
    this.socket.write(JSON.stringify({ rid, method: cmd.method, payload: cmd.payload }) + "\n");
    return answer;
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    let text = this.partial + chunk;
    let nl: number;
    while ((nl = text.indexOf("\n")) >= 0) {
      const line = text.slice(0, nl).replace(/\r$/, "");
      text = text.slice(nl + 1);
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      if (line.trim() !== "") this.queue.push(line);
    }
    if (Buffer.byteLength(text) > this.o.maxLineBytes) {
      // Too long: refuse it once, then drop the rest of it up to its newline.
      if (!this.skipping) this.queue.push("\u0000too-long");
      this.skipping = true;
      text = "";
    }
    this.partial = text;
    if (this.queue.length >= this.o.maxPendingLines) this.socket.pause();
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.queue.length > 0 && this.open) {
        await this.handle(this.queue.shift()!);
        if (this.socket.isPaused() && this.queue.length < this.o.maxPendingLines / 2) this.socket.resume();
      }
    } finally {
      this.processing = false;
    }
  }

  private async handle(line: string): Promise<void> {
    if (this.takeAnswer(line)) return;
    if (line === "\u0000too-long") line = `{"line longer than ${this.o.maxLineBytes} bytes":true}`;
    try {
      const r = await this.o.translator.receive(line, { address: this.address });
      this.o.onDevice(r.deviceId, this);
      if (this.o.ack) this.socket.write("ok\n");
    } catch (err) {
      const code = isStrataError(err) ? err.code : "STRATA_TRANSLATION_FAILED";
      if (!isStrataError(err)) this.o.log.error({ err, address: this.address }, "line-protocol input failed");
      if (this.o.ack && this.open) this.socket.write(`error ${code}\n`);
    }
  }

  /** A device's answer to a method: `{"rid":1,"status":200,"payload":…}`. */
  private takeAnswer(line: string): boolean {
    if (!line.startsWith("{\"rid\"")) return false;
    try {
      const a = JSON.parse(line) as { rid?: unknown; status?: unknown; payload?: unknown };
      if (typeof a.rid !== "number" || typeof a.status !== "number") return false;
      this.methods.get(a.rid)?.resolve({ status: a.status, payload: a.payload ?? null });
      return true;
    } catch {
      return false;
    }
  }
}
