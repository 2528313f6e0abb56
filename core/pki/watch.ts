import { unwatchFile, watchFile, type Stats } from "node:fs";
import type { Logger } from "../log.js";
import { keyMatches, splitPem } from "./certs.js";
import { readText, type TlsFiles } from "./files.js";
import type { Pki } from "./pki.js";

/** How often the `[tls]` files are checked for changes (stat polling: cheap, and works on every filesystem). */
export const TLS_WATCH_INTERVAL_MS = 10_000;

/**
 * Reloads the gateway's TLS material when its `[tls]` files change on disk — a certificate an operator (or
 * `strata pki`) issued, a trust bundle with a new root during a rollover — so no restart is needed.
 * A server chain whose key does not match (one file written, the other not yet) is skipped until both agree.
 */
export class TlsFileWatcher {
  private readonly watched: string[] = [];
  private reloading: Promise<void> | undefined;
  private again = false;

  constructor(private readonly opts: { pki: Pki; files: TlsFiles; logger: Logger; intervalMs?: number }) {}

  start(): void {
    const { files } = this.opts;
    const interval = this.opts.intervalMs ?? TLS_WATCH_INTERVAL_MS;
    for (const path of [files.certFile, files.keyFile, files.caFile, files.edgeCaCertFile, files.edgeCaKeyFile]) {
      if (!path || this.watched.includes(path)) continue;
      const onChange = (curr: Stats, prev: Stats) => {
        if (curr.mtimeMs !== prev.mtimeMs || curr.ino !== prev.ino || curr.size !== prev.size) void this.reload();
      };
      watchFile(path, { interval, persistent: false }, onChange);
      this.watched.push(path);
    }
  }

  stop(): void {
    for (const path of this.watched.splice(0)) unwatchFile(path);
  }

  /** Reads the files and applies what changed; safe to call at any time (calls overlap into one). */
  reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.again = false;
        await this.reloadOnce().catch((err: unknown) => this.opts.logger.warn({ err }, "tls files not reloaded"));
      } while (this.again);
    })().finally(() => { this.reloading = undefined; });
    return this.reloading;
  }

  private async reloadOnce(): Promise<void> {
    const { pki, files, logger } = this.opts;
    const [chain, key, ca] = await Promise.all([
      readText(files.certFile, "tls.cert_file"),
      readText(files.keyFile, "tls.key_file"),
      readText(files.caFile, "tls.ca_file"),
    ]);
    if (files.edgeCaCertFile && files.edgeCaKeyFile) {
      const [caCert, caKey] = await Promise.all([readText(files.edgeCaCertFile, "tls.edge_ca_cert_file"), readText(files.edgeCaKeyFile, "tls.edge_ca_key_file")]);
      if (caCert !== pki.edgeCa?.cert && keyMatches(caCert, caKey)) {
        pki.setEdgeCa({ cert: caCert, key: caKey });
        logger.info({ file: files.edgeCaCertFile }, "edge ca reloaded");
      }
    }
    if (ca !== pki.trustBundle && splitPem(ca).length > 0) {
      pki.setTrustBundle(ca);
      logger.info({ file: files.caFile, certificates: splitPem(ca).length }, "trust bundle reloaded");
    }
    if (chain !== pki.chain || key !== pki.key) {
      if (!keyMatches(chain, key)) {
        logger.debug({ file: files.certFile }, "server certificate and key do not match yet");
        return;
      }
      pki.replaceServerCertificate({ key, chain });
      logger.info({ file: files.certFile }, "server certificate reloaded");
    }
  }
}
