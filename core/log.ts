import pino from "pino";

export type Logger = pino.Logger;
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/**
 * Paths pino blanks wherever they appear in a logged object: secrets never reach the journal even when a
 * config or identity record is logged whole by mistake.
 */
export const REDACT_PATHS = [
  "*.key", "*.primaryKey", "*.secondaryKey", "*.sharedAccessKey", "*.password", "*.token", "*.sig",
  "*.authorization", "*.Authorization", "*.headers.authorization", "*.account_key", "*.owner_key",
  "key", "primaryKey", "secondaryKey", "password", "token",
];

export interface LoggerOptions {
  level?: LogLevel;
  /** A destination stream; stdout (JSON lines for journald) by default. */
  destination?: pino.DestinationStream;
}

/** The root logger: JSON to stdout, secrets redacted, errors under `err`. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? (process.env.STRATA_LOG_LEVEL as LogLevel | undefined) ?? "info",
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: { err: pino.stdSerializers.err },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that writes nothing: for tests and for tools that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
