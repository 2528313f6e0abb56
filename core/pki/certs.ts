import { generateKeyPair, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import forge from "node-forge";
import { StrataError } from "../errors.js";

/**
 * Key algorithms the PKI can issue. RSA only for now; ECDSA (P-256) comes in a later issue, which is why the
 * type travels through every issuing function rather than being fixed.
 */
export type KeyType = "rsa-2048" | "rsa-3072" | "rsa-4096";
export const DEFAULT_KEY_TYPE: KeyType = "rsa-2048";

/** A certificate with its private key, both PEM. */
export interface CertAndKey {
  cert: string;
  key: string;
}

/** A CA that can issue: its certificate and key (PEM). */
export type CaMaterial = CertAndKey;

/** An issued leaf: certificate, key, and chain (the leaf then its issuing CA, what a TLS server presents). */
export interface IssuedCert extends CertAndKey {
  chain: string;
}

export interface CaOptions {
  commonName: string;
  days?: number;
  keyType?: KeyType;
}

export interface ServerCertOptions {
  /** DNS names in the SAN; the first is also the CN. Default ["localhost"] when no IPs are given either. */
  hostnames?: readonly string[];
  /** IP addresses (v4 or v6) in the SAN. */
  ips?: readonly string[];
  days?: number;
  keyType?: KeyType;
}

export interface DeviceCertOptions {
  days?: number;
  keyType?: KeyType;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Back-dating absorbs clock skew between gateways whose clocks have not synced yet. */
const BACKDATE_MS = 60 * 60 * 1000;

const RSA_BITS: Record<KeyType, number> = { "rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096 };

/** A new key pair, generated natively (off the event loop) and returned as forge objects. */
async function newKeyPair(keyType: KeyType): Promise<{ privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey }> {
  const bits = RSA_BITS[keyType];
  if (bits === undefined) {
    throw new StrataError(
      "STRATA_PKI_KEY_TYPE_UNSUPPORTED",
      `key type "${String(keyType)}" is not supported; use one of ${Object.keys(RSA_BITS).join(", ")}`,
    );
  }
  const pem = await new Promise<string>((resolve, reject) => {
    generateKeyPair(
      "rsa",
      { modulusLength: bits, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } },
      (err, _pub, priv) => (err ? reject(err) : resolve(priv)),
    );
  });
  const privateKey = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  const publicKey = forge.pki.rsa.setPublicKey(privateKey.n, privateKey.e);
  return { privateKey, publicKey };
}

/** A positive random serial (RFC 5280 §4.1.2.2: positive, at most 20 octets). */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString("hex");
}

function parseCert(pem: string, what: string): forge.pki.Certificate {
  try {
    return forge.pki.certificateFromPem(pem);
  } catch (err) {
    throw new StrataError(
      "STRATA_PKI_INVALID_PEM",
      `${what} is not a PEM RSA certificate (${(err as Error).message}); pass the "-----BEGIN CERTIFICATE-----" text`,
      { cause: err },
    );
  }
}

function parseKey(pem: string, what: string): forge.pki.rsa.PrivateKey {
  try {
    return forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  } catch (err) {
    throw new StrataError(
      "STRATA_PKI_INVALID_PEM",
      `${what} is not a PEM RSA private key (${(err as Error).message}); pass the "-----BEGIN PRIVATE KEY-----" text`,
      { cause: err },
    );
  }
}

interface Build {
  subject: forge.pki.CertificateField[];
  publicKey: forge.pki.rsa.PublicKey;
  days: number;
  extensions: object[];
  issuer?: { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey };
  selfKey?: forge.pki.rsa.PrivateKey;
}

function build(b: Build): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = b.publicKey;
  cert.serialNumber = serial();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  cert.validity.notAfter = new Date(now + b.days * DAY_MS);
  cert.setSubject(b.subject);
  const issuerCert = b.issuer?.cert;
  cert.setIssuer(issuerCert ? issuerCert.subject.attributes : b.subject);
  const keyId = (issuerCert ?? cert).generateSubjectKeyIdentifier().getBytes();
  cert.setExtensions([
    ...b.extensions,
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: keyId },
  ]);
  const signer = b.issuer?.key ?? b.selfKey!;
  cert.sign(signer, forge.md.sha256.create());
  return cert;
}

function checkIssuer(ca: CaMaterial): { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey } {
  const cert = parseCert(ca.cert, "CA certificate");
  const key = parseKey(ca.key, "CA key");
  const certKey = cert.publicKey as forge.pki.rsa.PublicKey;
  if (certKey.n.compareTo(key.n) !== 0) {
    throw new StrataError("STRATA_PKI_KEY_MISMATCH", "the CA key does not belong to the CA certificate; pass the key issued with it");
  }
  const bc = cert.getExtension("basicConstraints") as { cA?: boolean } | null;
  if (!bc?.cA) {
    throw new StrataError(
      "STRATA_PKI_NOT_A_CA",
      `certificate "${cn(cert)}" is not a CA (basicConstraints cA is not set); issue from the root or edge CA`,
    );
  }
  return { cert, key };
}

function cn(cert: forge.pki.Certificate): string {
  return String(cert.subject.getField("CN")?.value ?? "");
}

/** A self-signed root CA. */
export async function createRootCa(opts: CaOptions): Promise<CaMaterial> {
  const keys = await newKeyPair(opts.keyType ?? DEFAULT_KEY_TYPE);
  const cert = build({
    subject: [{ name: "commonName", value: opts.commonName }],
    publicKey: keys.publicKey,
    days: opts.days ?? 3650,
    selfKey: keys.privateKey,
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** An intermediate CA (a gateway's edge CA) issued by `ca`. */
export async function issueCaCert(ca: CaMaterial, opts: CaOptions): Promise<IssuedCert> {
  const issuer = checkIssuer(ca);
  const keys = await newKeyPair(opts.keyType ?? DEFAULT_KEY_TYPE);
  const cert = build({
    subject: [{ name: "commonName", value: opts.commonName }],
    publicKey: keys.publicKey,
    days: opts.days ?? 1825,
    issuer,
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const pem = forge.pki.certificateToPem(cert);
  return { cert: pem, key: forge.pki.privateKeyToPem(keys.privateKey), chain: pem + ca.cert };
}

/**
 * A TLS server certificate for any gateway hostname or IP (SAN), issued by `ca`, so every hop of a
 * multi-gateway tree has TLS its children can verify against the root.
 */
export async function issueServerCert(ca: CaMaterial, opts: ServerCertOptions = {}): Promise<IssuedCert> {
  const issuer = checkIssuer(ca);
  const ips = [...(opts.ips ?? [])];
  const hostnames = [...(opts.hostnames ?? (ips.length ? [] : ["localhost"]))];
  for (const ip of ips) {
    if (isIP(ip) === 0) {
      throw new StrataError("STRATA_PKI_BAD_NAME", `"${ip}" is not an IP address; put host names in hostnames, addresses in ips`);
    }
  }
  for (const name of hostnames) {
    if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name)) {
      throw new StrataError("STRATA_PKI_BAD_NAME", `"${name}" is not a DNS host name; put IP addresses in ips`);
    }
  }
  const keys = await newKeyPair(opts.keyType ?? DEFAULT_KEY_TYPE);
  const cert = build({
    subject: [{ name: "commonName", value: hostnames[0] ?? ips[0]! }],
    publicKey: keys.publicKey,
    days: opts.days ?? 365,
    issuer,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [...hostnames.map((value) => ({ type: 2, value })), ...ips.map((ip) => ({ type: 7, ip }))],
      },
    ],
  });
  const pem = forge.pki.certificateToPem(cert);
  return { cert: pem, key: forge.pki.privateKeyToPem(keys.privateKey), chain: pem + ca.cert };
}

/** An X.509 device (or module, or child gateway) client certificate: CN = deviceId, clientAuth. */
export async function issueDeviceCert(ca: CaMaterial, deviceId: string, opts: DeviceCertOptions = {}): Promise<IssuedCert> {
  if (!deviceId || deviceId.length > 128) {
    throw new StrataError("STRATA_PKI_BAD_NAME", `device id "${deviceId}" must be 1 to 128 characters (IoT Hub's limit)`);
  }
  const issuer = checkIssuer(ca);
  const keys = await newKeyPair(opts.keyType ?? DEFAULT_KEY_TYPE);
  const cert = build({
    subject: [{ name: "commonName", value: deviceId }],
    publicKey: keys.publicKey,
    days: opts.days ?? 365,
    issuer,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", clientAuth: true },
    ],
  });
  const pem = forge.pki.certificateToPem(cert);
  return { cert: pem, key: forge.pki.privateKeyToPem(keys.privateKey), chain: pem + ca.cert };
}

/** When the (first) certificate in `pem` stops being valid. */
export function certificateExpiry(pem: string): Date {
  return parseCert(pem, "certificate").validity.notAfter;
}

/** What reuse of stored material needs to know about a certificate. */
export interface CertFacts {
  commonName: string;
  notAfter: Date;
  dnsNames: string[];
  ips: string[];
  isCa: boolean;
}

export function certFacts(pem: string): CertFacts {
  const cert = parseCert(pem, "certificate");
  const san = cert.getExtension("subjectAltName") as { altNames?: { type: number; value?: string; ip?: string }[] } | null;
  const alt = san?.altNames ?? [];
  const bc = cert.getExtension("basicConstraints") as { cA?: boolean } | null;
  return {
    commonName: cn(cert),
    notAfter: cert.validity.notAfter,
    dnsNames: alt.filter((a) => a.type === 2 && a.value).map((a) => a.value!),
    ips: alt.filter((a) => a.type === 7 && a.ip).map((a) => a.ip!),
    isCa: bc?.cA === true,
  };
}

/** True when `childPem` was signed by `issuerPem`'s key and the key `keyPem` belongs to `childPem`. */
export function verifyIssued(childPem: string, issuerPem: string, keyPem?: string): boolean {
  try {
    const child = forge.pki.certificateFromPem(childPem);
    const issuer = forge.pki.certificateFromPem(issuerPem);
    if (!issuer.verify(child)) return false;
    if (keyPem === undefined) return true;
    const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
    return (child.publicKey as forge.pki.rsa.PublicKey).n.compareTo(key.n) === 0;
  } catch {
    // Unparseable or foreign material is simply not a valid issue: the caller regenerates it.
    return false;
  }
}
