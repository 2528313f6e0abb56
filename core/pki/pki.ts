import { StrataError } from "../errors.js";
import {
  certificateExpiry,
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

/**
 * The gateway's certificates and the means to issue more (TOKENS.Pki). Core's composition root builds it from
 * `[tls]` files, or from a development PKI with Pki.dev().
 */
export class Pki {
  constructor(private readonly material: PkiMaterial) {}

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
