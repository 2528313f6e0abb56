import { chmod, readFile, rename, writeFile } from "node:fs/promises";
import { StrataError } from "../errors.js";

/** Where a gateway's TLS material lives (the `[tls]` keys of the config). */
export interface TlsFiles {
  /** The server certificate chain the listeners present. */
  certFile: string;
  /** Its private key (0600). */
  keyFile: string;
  /** The trust bundle (root CA certificates). */
  caFile: string;
  edgeCaCertFile?: string;
  edgeCaKeyFile?: string;
}

/** Private keys: owner read/write only. */
export const KEY_MODE = 0o600;
export const CERT_MODE = 0o644;

/**
 * Writes `content` to `path` through a temp file and a rename, so a reader (the running gateway's file
 * watcher, a restart) never sees half a file; the mode is set exactly (the umask may narrow `writeFile`'s).
 */
export async function writeFileAtomic(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    await writeFile(tmp, content, { mode });
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (err) {
    throw new StrataError(
      "STRATA_PKI_WRITE",
      `cannot write ${path} (${(err as Error).message}); make its directory writable by the gateway's user`,
      { cause: err },
    );
  }
}

export async function readText(path: string, key: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new StrataError("STRATA_PKI_READ", `cannot read ${key} ${path} (${(err as Error).message}); check the path in [tls]`, { cause: err });
  }
}
