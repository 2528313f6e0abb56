// A line-protocol device for tests: one TCP connection, lines out, lines in (acks, commands).
import net from "node:net";
import { once } from "node:events";

export class LineDevice {
  private buffer = "";
  private readonly lines: string[] = [];
  private waiters: Array<{ match: (l: string) => boolean; resolve: (l: string) => void }> = [];
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        const w = this.waiters.find((x) => x.match(line));
        if (w) {
          this.waiters = this.waiters.filter((x) => x !== w);
          w.resolve(line);
        } else {
          this.lines.push(line);
        }
      }
    });
    socket.on("error", () => undefined);
    this.closed = once(socket, "close").then(() => undefined);
  }

  static async connect(port: number, host = "127.0.0.1"): Promise<LineDevice> {
    const socket = net.connect(port, host);
    await once(socket, "connect");
    return new LineDevice(socket);
  }

  /** The next received line `match` accepts (already received or still to come). */
  next(match: (l: string) => boolean = () => true): Promise<string> {
    const i = this.lines.findIndex(match);
    if (i >= 0) return Promise.resolve(this.lines.splice(i, 1)[0]!);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  /** Sends one line and waits for its ack (`ok` or `error …`): the plugin runs with ack = true. */
  async send(line: string): Promise<string> {
    const ack = this.next((l) => l === "ok" || l.startsWith("error "));
    this.socket.write(line + "\n");
    return ack;
  }

  close(): void {
    this.socket.destroy();
  }
}
