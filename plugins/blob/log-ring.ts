import type { Logger } from "../../core/index.js";

/** One pino JSON line kept for UploadModuleLogs / support bundles. */
export interface LogLine {
  time: number;
  level: number;
  line: string;
}

/**
 * The gateway's recent log lines, kept in memory: tees the pino destination the gateway's logger writes to
 * (the logger given to a plugin is a child sharing it). Core has no log tail for plugins yet; see the README.
 */
export class LogRing {
  private readonly lines: LogLine[] = [];
  private bytes = 0;
  private restore: (() => void) | undefined;

  constructor(private readonly maxBytes = 4 * 1024 * 1024) {}

  attach(logger: Logger): void {
    const stream = findStream(logger);
    if (!stream || this.restore) return;
    const original = stream.write;
    stream.write = (chunk: string, ...rest: unknown[]) => {
      this.push(String(chunk));
      return (original as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
    };
    this.restore = () => {
      stream.write = original;
    };
  }

  detach(): void {
    this.restore?.();
    this.restore = undefined;
  }

  push(text: string): void {
    for (const line of text.split("\n")) {
      if (!line) continue;
      let time = Date.now();
      let level = 30;
      try {
        const o = JSON.parse(line) as { time?: number; level?: number };
        time = o.time ?? time;
        level = o.level ?? level;
      } catch {
        // not JSON (a pretty printer): keep it with the receive time
      }
      this.lines.push({ time, level, line });
      this.bytes += line.length;
    }
    while (this.bytes > this.maxBytes && this.lines.length > 1) this.bytes -= this.lines.shift()!.line.length;
  }

  /** Lines within [since, until] (ms) at `minLevel` or above, the last `tail` of them. */
  select(filter: { since?: number; until?: number; minLevel?: number; tail?: number; regex?: RegExp }): LogLine[] {
    const out = this.lines.filter((l) => (filter.since === undefined || l.time >= filter.since)
      && (filter.until === undefined || l.time <= filter.until)
      && (filter.minLevel === undefined || l.level >= filter.minLevel)
      && (!filter.regex || filter.regex.test(l.line)));
    return filter.tail !== undefined ? out.slice(-filter.tail) : out;
  }
}

interface Writable {
  write: (...a: never[]) => unknown;
}

/** pino keeps its destination under a private symbol described "pino.stream" (inherited by children). */
function findStream(logger: Logger): Writable | undefined {
  for (let o: object | null = logger; o; o = Object.getPrototypeOf(o) as object | null) {
    for (const sym of Object.getOwnPropertySymbols(o)) {
      if (sym.description === "pino.stream") {
        const s = (o as Record<symbol, unknown>)[sym] as Writable | undefined;
        if (s && typeof s.write === "function") return s;
      }
    }
  }
  return undefined;
}
