import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import { StrataAggregateError, StrataError } from "../errors.js";
import { describeIssues } from "./issues.js";
import { strataConfigSchema, type StrataConfig } from "./schema.js";

/** The default config file of an installed appliance. */
export const DEFAULT_CONFIG_PATH = "/etc/strata/strata.toml";

export interface ParseConfigOptions {
  /** Named in errors (the file path, or "embedded default"). */
  source?: string;
  /** Folder that relative paths resolve against (the config file's folder). */
  baseDir: string;
}

/** Reads, parses and validates one TOML config file; relative paths resolve against its folder. */
export function loadConfig(file: string): StrataConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new StrataError(
      "STRATA_CONFIG_READ",
      `config ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}); check the path given to --config, or run without one for the embedded default`,
      { cause: err },
    );
  }
  return parseConfig(text, { source: path, baseDir: dirname(path) });
}

/** Parses TOML text and validates it; see `validateConfig`. */
export function parseConfig(text: string, opts: ParseConfigOptions): StrataConfig {
  const source = opts.source ?? "config";
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      const reason = err.message.replace(/^Invalid TOML document: /, "").split("\n")[0];
      throw new StrataError(
        "STRATA_CONFIG_TOML",
        `${source}: invalid TOML at line ${err.line}, column ${err.column}: ${reason}`,
        { cause: err },
      );
    }
    throw err;
  }
  return validateConfig(raw, { ...opts, source });
}

/**
 * Validates a parsed config object: unknown keys refused at every level, defaults applied, and every
 * problem collected into one error (code STRATA_CONFIG_INVALID, one line per key path). Relative paths of
 * `*_file` keys and `data_dir` resolve against `baseDir`.
 */
export function validateConfig(raw: unknown, opts: ParseConfigOptions): StrataConfig {
  const source = opts.source ?? "config";
  const result = strataConfigSchema.safeParse(raw);
  if (!result.success) {
    const problems = describeIssues(result.error.issues, raw).map((line) => new StrataError("STRATA_CONFIG_INVALID", line));
    throw new StrataAggregateError("STRATA_CONFIG_INVALID", `${source} is invalid (${problems.length} problem${problems.length === 1 ? "" : "s"})`, problems);
  }
  return resolvePaths(result.data, opts.baseDir);
}

function resolvePaths(c: StrataConfig, baseDir: string): StrataConfig {
  const at = (p: string) => resolve(baseDir, p);
  return {
    ...c,
    data_dir: at(c.data_dir),
    identity: c.identity && { key_file: at(c.identity.key_file), ...(c.identity.cert_file ? { cert_file: at(c.identity.cert_file) } : {}) },
    tls: {
      cert_file: at(c.tls.cert_file),
      key_file: at(c.tls.key_file),
      ca_file: at(c.tls.ca_file),
      ...(c.tls.edge_ca_cert_file ? { edge_ca_cert_file: at(c.tls.edge_ca_cert_file) } : {}),
      ...(c.tls.edge_ca_key_file ? { edge_ca_key_file: at(c.tls.edge_ca_key_file) } : {}),
    },
    service: c.service && { owner_key_file: at(c.service.owner_key_file) },
  };
}
