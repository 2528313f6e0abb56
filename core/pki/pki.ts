import { EventEmitter } from "node:events";
import { StrataError } from "../errors.js";
import {
  certificateExpiry,
  keyMatches,
  splitPem,
  issueDeviceCert,
  issueServerCert,
  type CaMaterial,
  type DeviceCertOptions,
  type IssuedCert,
  type ServerCertOptions,
} from "./certs.js";
import { ensureDevPki, type DevPki, type DevPkiOptions } from "./dev-pki.js";

/** What a gateway's PKI is made of, all PEM. */
export interface PkiMaterial {
  /** The gateway's server certificate and key (presented by every listener). */
  cert: string;
  key: string;
  /** Server certificate then the edge CA. */
  chain: string;
  /** The root CA(s) this gateway trusts: its parent's server certificate and child device certificates chain to it. */
  trustBundle: string;
  /** The gateway's edge CA; absent when an operator supplies only a server certificate (no local issuing). */
  edgeCa?: CaMaterial;
}

/** What TLS listeners pass to `tls.createServer` / `server.setSecureContext`. */
export interface ServerTlsMaterial {
  /** The server certificate chain (leaf first). */
  cert: string;
  key: string;
  /** Trust bundle for client certificates. */
  ca: string;
}

/** The event every TLS listener subscribes to (with `onCertificateChanged`) to hot-reload its certificate. */
export const CERTIFICATE_CHANGED = "certificate-changed";

/**
 * The gateway's certificates and the means to issue more (TOKENS.Pki). Core's composition root builds it from
 * `[tls]` files, or from a development PKI with Pki.dev().
 */
export class Pki {
  private readonly events = new EventEmitter();
  private material: PkiMaterial;

  constructor(material: PkiMaterial) {
    this.material = { ...material };
    // One listener per TLS listener (heads, front, identities, upstream) plus tests: more than the default 10.
    this.events.setMaxListeners(100);
  }

  /** A Pki over a development PKI in `dir` (created on first use, reused after). */
  static async dev(dir: string, opts?: DevPkiOptions): Promise<{ pki: Pki; dev: DevPki }> {
    const dev = await ensureDevPki(dir, opts);
    const pki = new Pki({
      cert: dev.server.cert,
      key: dev.server.key,
      chain: dev.server.chain,
      trustBundle: dev.trustBundle,
      edgeCa: dev.edgeCa,
    });
    return { pki, dev };
  }

  get cert(): string {
    return this.material.cert;
  }
  get key(): string {
    return this.material.key;
  }
  get chain(): string {
    return this.material.chain;
  }
  get trustBundle(): string {
    return this.material.trustBundle;
  }
  get edgeCa(): CaMaterial | undefined {
    return this.material.edgeCa;
  }

  /** Options for a TLS server: present the chain, accept client certificates from the trust bundle. */
  serverTls(): ServerTlsMaterial {
    return { cert: this.material.chain, key: this.material.key, ca: this.material.trustBundle };
  }

  /**
   * Calls `listener` whenever the server certificate or the trust bundle changes (renewal, rollover, files
   * replaced on disk). A TLS listener calls `server.setSecureContext(...)` there: connections already open keep
   * their certificate, new ones get the new one. Returns the unsubscribe function.
   */
  onCertificateChanged(listener: (tlsMaterial: ServerTlsMaterial, pki: Pki) => void): () => void {
    const wrapped = () => listener(this.serverTls(), this);
    this.events.on(CERTIFICATE_CHANGED, wrapped);
    return () => this.events.off(CERTIFICATE_CHANGED, wrapped);
  }

  /**
   * Swaps the server certificate (a renewal). `chain` is what listeners present (the leaf then its CAs);
   * refused when the key does not belong to it.
   */
  replaceServerCertificate(next: { cert?: string; key: string; chain: string }): void {
    if (!keyMatches(next.chain, next.key)) {
      throw new StrataError("STRATA_PKI_KEY_MISMATCH", "the new server key does not belong to the new server certificate; write the key issued with it");
    }
    const cert = next.cert ?? splitPem(next.chain)[0]! + "\n";
    this.material = { ...this.material, cert, key: next.key, chain: next.chain };
    this.events.emit(CERTIFICATE_CHANGED);
  }

  /** Swaps the trust bundle (root CA rollover: old and new roots during the changeover). */
  setTrustBundle(pem: string): void {
    if (splitPem(pem).length === 0) {
      throw new StrataError("STRATA_PKI_INVALID_PEM", "the new trust bundle holds no certificate; give the root CA certificate(s) as PEM");
    }
    this.material = { ...this.material, trustBundle: pem };
    this.events.emit(CERTIFICATE_CHANGED);
  }

  /** Swaps the edge CA (its certificate renewed or re-issued under a new root). */
  setEdgeCa(edgeCa: CaMaterial): void {
    if (!keyMatches(edgeCa.cert, edgeCa.key)) {
      throw new StrataError("STRATA_PKI_KEY_MISMATCH", "the edge CA key does not belong to the edge CA certificate; write the key issued with it");
    }
    this.material = { ...this.material, edgeCa };
  }

  /** When the gateway's server certificate expires. */
  serverCertExpiry(): Date {
    return certificateExpiry(this.material.cert);
  }

  /** A server certificate issued by the edge CA (another listener name, a test gateway on 127.0.0.N). */
  issueServerCert(opts: ServerCertOptions): Promise<IssuedCert> {
    return issueServerCert(this.requireCa("issue a server certificate"), opts);
  }

  /** A device client certificate (CN = deviceId) issued by the edge CA, for X.509 device auth. */
  issueDeviceCert(deviceId: string, opts?: DeviceCertOptions): Promise<IssuedCert> {
    return issueDeviceCert(this.requireCa("issue a device certificate"), deviceId, opts);
  }

  private requireCa(what: string): CaMaterial {
    if (!this.material.edgeCa) {
      throw new StrataError(
        "STRATA_PKI_NO_CA",
        `cannot ${what}: this gateway has no edge CA key; configure the edge CA certificate and key in [tls], or use the development PKI`,
      );
    }
    return this.material.edgeCa;
  }
}
