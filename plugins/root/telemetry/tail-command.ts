import type { PluginCommand, PluginCommandContext } from "../../../core/index.js";
import { follow, readLast } from "./log-reader.js";
import { telemetryLogDir } from "./segments.js";

const USAGE = `strata telemetry tail --json [--follow] [--limit N]

Prints the root's telemetry log, one JSON object per line: deviceId, moduleId, enqueuedTime (ISO),
messageId, properties, systemProperties, body (utf-8 text, or base64 with bodyEncoding "base64").
  --json       JSON lines (the only output format)
  --limit N    only the last N messages (default: all)
  --follow     keep printing new messages until interrupted`;

interface TailArgs {
  follow: boolean;
  limit: number | undefined;
}

function parseArgs(args: readonly string[]): TailArgs | string {
  const out: TailArgs = { follow: false, limit: undefined };
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--json") json = true;
    else if (a === "--follow" || a === "-f") out.follow = true;
    // The CLI leaves its own --config flag in the arguments; it has been applied already.
    else if (a === "--config") i++;
    else if (a.startsWith("--config=")) continue;
    else if (a === "--limit" || a.startsWith("--limit=")) {
      const raw = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
      const n = Number(raw);
      if (raw === undefined || !Number.isInteger(n) || n < 0) return `--limit needs a whole number >= 0, got "${raw ?? ""}"`;
      out.limit = n;
    } else return `unknown argument "${a}"`;
  }
  if (!json) return "--json is required (JSON lines is the only output format)";
  return out;
}

/** Writes one line, waiting for the stream to drain when it is backed up (a slow pipe). */
function writeLine(stream: NodeJS.WritableStream, line: string): Promise<void> | undefined {
  if (stream.write(line + "\n")) return undefined;
  return new Promise((resolve) => stream.once("drain", () => resolve()));
}

/** `strata telemetry tail`: reads the log files directly, so it works while the gateway runs. */
export const telemetryTailCommand: PluginCommand = {
  name: "telemetry tail",
  summary: "print the root's telemetry log as JSON lines",
  usage: USAGE,
  async run(args: readonly string[], ctx: PluginCommandContext): Promise<number> {
    const parsed = parseArgs(args);
    if (typeof parsed === "string") {
      ctx.stderr.write(`strata telemetry tail: ${parsed}\n\n${USAGE}\n`);
      return 2;
    }
    const dir = telemetryLogDir(ctx.dataDir);
    const { lines, position } = await readLast(dir, parsed.limit);
    for (const line of lines) await writeLine(ctx.stdout, line);
    if (!parsed.follow) return 0;
    // Lines arrive synchronously from the reader; keep their order while waiting on a slow stdout.
    let pending: Promise<void> = Promise.resolve();
    await follow(dir, position, (line) => {
      pending = pending.then(() => writeLine(ctx.stdout, line));
    }, ctx.signal);
    await pending;
    return 0;
  },
};
