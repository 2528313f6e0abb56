import { readFileSync, statSync } from "node:fs";
import { StrataError } from "../errors.js";

/**
 * Reads a secret (a key, the owner key, an account key) from the file a `*_file` key names. Refuses a
 * file that group or others may access (mode & 0o077): a secret is only as safe as its file. The content
 * is returned with trailing whitespace removed and is never logged or put into an error message.
 * @param keyPath the config key that named the file (e.g. "identity.key_file"), for the error message
 */
export function readSecret(path: string, keyPath: string): string {
  let mode: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) {
      throw new StrataError("STRATA_CONFIG_SECRET_READ", `${keyPath}: ${path} is not a regular file; point ${keyPath} at the secret file`);
    }
    mode = st.mode;
  } catch (err) {
    if (err instanceof StrataError) throw err;
    throw new StrataError(
      "STRATA_CONFIG_SECRET_READ",
      `${keyPath}: secret file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"}); create it (mode 0600) or fix ${keyPath}`,
      { cause: err },
    );
  }
  if ((mode & 0o077) !== 0) {
    throw new StrataError(
      "STRATA_CONFIG_SECRET_MODE",
      `${keyPath}: secret file ${path} is accessible by group or others (mode ${(mode & 0o777).toString(8).padStart(4, "0")}); run: chmod 600 ${path}`,
    );
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new StrataError(
      "STRATA_CONFIG_SECRET_READ",
      `${keyPath}: secret file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"}); check its owner is the strata user`,
      { cause: err },
    );
  }
  const secret = text.replace(/\s+$/, "");
  if (secret === "") {
    throw new StrataError("STRATA_CONFIG_SECRET_READ", `${keyPath}: secret file ${path} is empty; write the secret into it`);
  }
  return secret;
}
