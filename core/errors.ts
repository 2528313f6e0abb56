/**
 * Strata's error type. Every error that reaches an operator carries a stable code `STRATA_<AREA>_<WHAT>`
 * with a row in docs/errors.md (when it happens, what to do).
 */
export class StrataError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StrataError";
    this.code = code;
  }
}

/** An error raised by, or about, one plugin: the plugin's name is part of the message and a field. */
export class PluginError extends StrataError {
  readonly plugin: string;
  constructor(plugin: string, code: string, message: string, options?: { cause?: unknown }) {
    super(code, `plugin ${plugin}: ${message}`, options);
    this.name = "PluginError";
    this.plugin = plugin;
  }
}

/** Several failures reported together (stop of many plugins, config with many bad keys). */
export class StrataAggregateError extends StrataError {
  readonly errors: readonly Error[];
  constructor(code: string, message: string, errors: readonly Error[]) {
    super(code, `${message}: ${errors.map((e) => e.message).join("; ")}`);
    this.name = "StrataAggregateError";
    this.errors = errors;
  }
}

export function isStrataError(e: unknown, code?: string): e is StrataError {
  return e instanceof StrataError && (code === undefined || e.code === code);
}
