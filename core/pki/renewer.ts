import { StrataError } from "../errors.js";
import type { Logger } from "../log.js";
import { certFacts, splitPem, type IssuedCert } from "./certs.js";
import { CERT_MODE, KEY_MODE, writeFileAtomic, type TlsFiles } from "./files.js";
import type { Pki } from "./pki.js";

/** A server certificate is renewed once this fraction of its lifetime has passed (2/3: a 1-year one after 8 months). */
export const RENEW_AT_FRACTION = 2 / 3;
const DAY_MS = 24 * 60 * 60 * 1000;
/** setTimeout's limit (about 24.8 days): longer waits are re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** After a failed renewal, try again this much later. */
const RETRY_MS = 60 * 60 * 1000;

export interface RenewerOptions {
  pki: Pki;
  /** Where the renewed chain and key are written, so a restart keeps them; absent: in memory only. */
  files?: Pick<TlsFiles, "certFile" | "keyFile">;
  logger: Logger;
  fraction?: number;
  now?: () => number;
}

/**
 * Renews the gateway's server certificate from its edge CA before it expires, with the same names, key type and
 * lifetime, writes it to `[tls]`, and swaps it in the Pki, which makes every TLS listener hot-reload it
 * (connections already open stay; new ones get the new certificate). Only a gateway that holds its edge CA key
 * can renew; others log that the operator must.
 */
export class ServerCertRenewer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private renewing: Promise<IssuedCert> | undefined;
  private readonly now: () => number;
  private readonly fraction: number;

  constructor(private readonly opts: RenewerOptions) {
    this.now = opts.now ?? Date.now;
    this.fraction = opts.fraction ?? RENEW_AT_FRACTION;
  }

  /** When the current certificate is due for renewal (ms since the epoch). */
  dueAt(): number {
    const f = certFacts(this.opts.pki.cert);
    const start = f.notBefore.getTime();
    return start + (f.notAfter.getTime() - start) * this.fraction;
  }

  start(): void {
    this.stopped = false;
    this.arm(this.dueAt());
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const wait = Math.max(0, at - this.now());
    this.timer = setTimeout(() => {
      if (wait > MAX_TIMER_MS) return this.arm(at);
      this.renewNow().then(
        () => this.arm(this.dueAt()),
        (err: unknown) => {
          this.opts.logger.error({ err, retryInMs: RETRY_MS }, "server certificate renewal failed");
          this.arm(this.now() + RETRY_MS);
        },
      );
    }, Math.min(wait, MAX_TIMER_MS));
    this.timer.unref();
  }

  /** Renews now (also what the timer does); concurrent calls share one renewal. */
  renewNow(): Promise<IssuedCert> {
    this.renewing ??= this.renew().finally(() => { this.renewing = undefined; });
    return this.renewing;
  }

  private async renew(): Promise<IssuedCert> {
    const { pki, files, logger } = this.opts;
    const edgeCa = pki.edgeCa;
    if (!edgeCa) {
      throw new StrataError(
        "STRATA_PKI_NO_CA",
        "cannot renew the server certificate: this gateway has no edge CA key; issue one with `strata pki issue-server` where the CA is and replace [tls] cert_file and key_file (the gateway reloads them)",
      );
    }
    const old = certFacts(pki.cert);
    const lifetimeDays = Math.max(1, Math.round((old.notAfter.getTime() - old.notBefore.getTime()) / DAY_MS));
    // Never past the edge CA's own expiry: a chain is only as valid as its shortest link.
    const caLeftDays = Math.floor((certFacts(edgeCa.cert).notAfter.getTime() - this.now()) / DAY_MS);
    if (caLeftDays < 1) {
      throw new StrataError("STRATA_PKI_CA_EXPIRED", "the edge CA has expired or expires within a day; issue this gateway a new edge CA (docs/pki.md) before its server certificate can be renewed");
    }
    const issued = await pki.issueServerCert({
      hostnames: old.dnsNames,
      ips: old.ips,
      keyType: old.keyType,
      days: Math.min(lifetimeDays, caLeftDays),
    });
    if (files) {
      // Key first: a reader that sees the new key with the old chain refuses the pair and reads again.
      await writeFileAtomic(files.keyFile, issued.key, KEY_MODE);
      await writeFileAtomic(files.certFile, issued.chain, CERT_MODE);
    }
    pki.replaceServerCertificate({ cert: splitPem(issued.cert)[0] + "\n", key: issued.key, chain: issued.chain });
    const next = certFacts(issued.cert);
    logger.info({ previousNotAfter: old.notAfter.toISOString(), notAfter: next.notAfter.toISOString(), sha256: next.sha256 }, "server certificate renewed");
    return issued;
  }
}
