/**
 * Certificate issuing for the gateway PKI: root CAs, edge CAs, server and device certificates, RSA or ECDSA P-256.
 *
 * Why @peculiar/x509 and not node-forge (which this file used first): forge implements RSA only, and ECDSA P-256
 * is required (smaller keys and handshakes on small gateways). @peculiar/x509 is maintained, widely used and
 * only encodes ASN.1: every key is generated and every signature made by node's own crypto (through its
 * WebCrypto), so no cryptography is done in JavaScript. Parsing for checks (expiry, SANs, who issued what) uses
 * node's X509Certificate where it can, the same code node's TLS trusts.
 */
// @peculiar/x509 registers its algorithm providers in tsyringe, which needs the metadata polyfill first.
import "reflect-metadata";
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  randomBytes,
  webcrypto,
  X509Certificate as NodeX509,
  type KeyObject,
} from "node:crypto";
import { isIP } from "node:net";
import * as x509 from "@peculiar/x509";
import { StrataError } from "../errors.js";

/** Key algorithms the PKI can issue. */
export type KeyType = "rsa-2048" | "rsa-3072" | "rsa-4096" | "ecdsa-p256";
export const KEY_TYPES: readonly KeyType[] = ["rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256"];
export const DEFAULT_KEY_TYPE: KeyType = "rsa-2048";

/** A certificate with its private key, both PEM. */
export interface CertAndKey {
  cert: string;
  key: string;
}

/** A CA that can issue: its certificate (first PEM block; any after it are its chain) and key (PEM). */
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

type WebCryptoKey = Parameters<typeof x509.X509CertificateGenerator.create>[0] extends { signingKey: infer K } ? K : never;

const DAY_MS = 24 * 60 * 60 * 1000;
/** Back-dating absorbs clock skew between gateways whose clocks have not synced yet. */
const BACKDATE_MS = 60 * 60 * 1000;

const RSA_BITS: Partial<Record<KeyType, number>> = { "rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096 };
const RSA_ALG = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;
const EC_ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** A new key pair, generated natively (off the event loop); the private key as PKCS#8 PEM. */
async function newKey(keyType: KeyType): Promise<KeyObject> {
  const bits = RSA_BITS[keyType];
  if (bits === undefined && keyType !== "ecdsa-p256") {
    throw new StrataError(
      "STRATA_PKI_KEY_TYPE_UNSUPPORTED",
      `key type "${String(keyType)}" is not supported; use one of ${KEY_TYPES.join(", ")}`,
    );
  }
  return new Promise<KeyObject>((resolve, reject) => {
    const done = (err: Error | null, _pub: KeyObject, priv: KeyObject) => (err ? reject(err) : resolve(priv));
    if (bits !== undefined) generateKeyPair("rsa", { modulusLength: bits }, done);
    else generateKeyPair("ec", { namedCurve: "prime256v1" }, done);
  });
}

/** The WebCrypto algorithm a key signs with, or an error naming the key types this PKI accepts. */
function algorithmOf(key: KeyObject, what: string): typeof RSA_ALG | typeof EC_ALG {
  if (key.asymmetricKeyType === "rsa") return RSA_ALG;
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return EC_ALG;
  throw new StrataError(
    "STRATA_PKI_KEY_TYPE_UNSUPPORTED",
    `${what} is a ${key.asymmetricKeyType} key${key.asymmetricKeyDetails?.namedCurve ? ` on ${key.asymmetricKeyDetails.namedCurve}` : ""}; use RSA or ECDSA P-256`,
  );
}

/** The key type name of a private or public key (for `pki show` and renewing with the same type). */
export function keyTypeOf(key: KeyObject): KeyType {
  if (key.asymmetricKeyType === "ec") return "ecdsa-p256";
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 2048;
  return bits >= 4096 ? "rsa-4096" : bits >= 3072 ? "rsa-3072" : "rsa-2048";
}

async function signingKey(key: KeyObject): Promise<WebCryptoKey> {
  const alg = algorithmOf(key, "the issuing key");
  const der = key.export({ type: "pkcs8", format: "der" });
  return (await webcrypto.subtle.importKey("pkcs8", der, alg, false, ["sign"])) as WebCryptoKey;
}

async function publicCryptoKey(key: KeyObject): Promise<WebCryptoKey> {
  const alg = algorithmOf(key, "the key");
  const der = createPublicKey(key).export({ type: "spki", format: "der" });
  return (await webcrypto.subtle.importKey("spki", der, alg, true, ["verify"])) as WebCryptoKey;
}

function keyPem(key: KeyObject): string {
  return key.export({ type: "pkcs8", format: "pem" }).toString();
}

/** A positive random serial (RFC 5280 §4.1.2.2: positive, at most 20 octets). */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString("hex");
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate PEM block in `pem`, in order. */
export function splitPem(pem: string): string[] {
  return pem.match(PEM_BLOCK) ?? [];
}

function parseCert(pem: string, what: string): NodeX509 {
  const first = splitPem(pem)[0];
  try {
    if (!first) throw new Error("no BEGIN CERTIFICATE block");
    return new NodeX509(first);
  } catch (err) {
    throw new StrataError(
      "STRATA_PKI_INVALID_PEM",
      `${what} is not a PEM certificate (${(err as Error).message}); pass the "-----BEGIN CERTIFICATE-----" text`,
      { cause: err },
    );
  }
}

export function parseKey(pem: string, what: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new StrataError(
      "STRATA_PKI_INVALID_PEM",
      `${what} is not a PEM private key (${(err as Error).message}); pass the "-----BEGIN PRIVATE KEY-----" text`,
      { cause: err },
    );
  }
}

function sameKey(cert: NodeX509, key: KeyObject): boolean {
  const a = cert.publicKey.export({ type: "spki", format: "der" });
  const b = createPublicKey(key).export({ type: "spki", format: "der" });
  return a.equals(b);
}

interface Issuer {
  cert: NodeX509;
  pem: string;
  key: KeyObject;
}

function checkIssuer(ca: CaMaterial): Issuer {
  const cert = parseCert(ca.cert, "CA certificate");
  const key = parseKey(ca.key, "CA key");
  if (!sameKey(cert, key)) {
    throw new StrataError("STRATA_PKI_KEY_MISMATCH", "the CA key does not belong to the CA certificate; pass the key issued with it");
  }
  if (!cert.ca) {
    throw new StrataError(
      "STRATA_PKI_NOT_A_CA",
      `certificate "${cnOf(cert)}" is not a CA (basicConstraints cA is not set); issue from the root or edge CA`,
    );
  }
  return { cert, pem: splitPem(ca.cert)[0]!, key };
}

function cnOf(cert: NodeX509): string {
  const m = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject);
  return m?.[1] ?? "";
}

interface Build {
  commonName: string;
  key: KeyObject;
  days: number;
  extensions: x509.Extension[];
  /** Absent: self-signed with `key`. */
  issuer?: Issuer;
}

async function build(b: Build): Promise<string> {
  const now = Date.now();
  const publicKey = await publicCryptoKey(b.key);
  const issuerParsed = b.issuer ? new x509.X509Certificate(b.issuer.pem) : undefined;
  const signerKey = b.issuer?.key ?? b.key;
  const extensions = [
    ...b.extensions,
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerParsed ? issuerParsed.publicKey : publicKey),
  ];
  const subject: x509.JsonName = [{ CN: [b.commonName] }];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    // The issuer's subject as encoded in its certificate, so name chaining matches byte for byte.
    issuer: issuerParsed ? issuerParsed.subjectName : subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + b.days * DAY_MS),
    publicKey,
    signingKey: await signingKey(signerKey),
    signingAlgorithm: algorithmOf(signerKey, "the issuing key"),
    extensions,
  });
  return cert.toString("pem") + "\n";
}

const CA_USAGE = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature;

/** Leaf key usage: ECDSA keys sign (digitalSignature); RSA keys also encipher (RSA key exchange in TLS 1.2). */
function leafUsage(key: KeyObject): number {
  return key.asymmetricKeyType === "rsa"
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;
}

/** A self-signed root CA. */
export async function createRootCa(opts: CaOptions): Promise<CaMaterial> {
  const key = await newKey(opts.keyType ?? DEFAULT_KEY_TYPE);
  const cert = await build({
    commonName: opts.commonName,
    key,
    days: opts.days ?? 3650,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(CA_USAGE, true)],
  });
  return { cert, key: keyPem(key) };
}

/** An intermediate CA (a gateway's edge CA) issued by `ca`; its chain is it then `ca`'s certificate(s). */
export async function issueCaCert(ca: CaMaterial, opts: CaOptions): Promise<IssuedCert> {
  const issuer = checkIssuer(ca);
  const key = await newKey(opts.keyType ?? DEFAULT_KEY_TYPE);
  const cert = await build({
    commonName: opts.commonName,
    key,
    days: opts.days ?? 1825,
    issuer,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(CA_USAGE, true)],
  });
  return { cert, key: keyPem(key), chain: cert + chainAbove(ca.cert) };
}

/** What goes after an issued certificate in its chain: the issuer's certificate(s) as given. */
function chainAbove(caPem: string): string {
  return caPem.endsWith("\n") ? caPem : caPem + "\n";
}

const DNS_NAME = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

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
    if (!DNS_NAME.test(name)) {
      throw new StrataError("STRATA_PKI_BAD_NAME", `"${name}" is not a DNS host name; put IP addresses in ips`);
    }
  }
  if (!hostnames.length && !ips.length) {
    throw new StrataError("STRATA_PKI_BAD_NAME", "a server certificate needs at least one host name or IP address");
  }
  const key = await newKey(opts.keyType ?? DEFAULT_KEY_TYPE);
  const cert = await build({
    commonName: hostnames[0] ?? ips[0]!,
    key,
    days: opts.days ?? 365,
    issuer,
    extensions: [
      new x509.BasicConstraintsExtension(false),
      new x509.KeyUsagesExtension(leafUsage(key), true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...hostnames.map((value) => ({ type: "dns" as const, value })),
        ...ips.map((value) => ({ type: "ip" as const, value })),
      ]),
    ],
  });
  return { cert, key: keyPem(key), chain: cert + chainAbove(ca.cert) };
}

/** An X.509 device (or module, or child gateway) client certificate: CN = deviceId, clientAuth. */
export async function issueDeviceCert(ca: CaMaterial, deviceId: string, opts: DeviceCertOptions = {}): Promise<IssuedCert> {
  if (!deviceId || deviceId.length > 128) {
    throw new StrataError("STRATA_PKI_BAD_NAME", `device id "${deviceId}" must be 1 to 128 characters (IoT Hub's limit)`);
  }
  const issuer = checkIssuer(ca);
  const key = await newKey(opts.keyType ?? DEFAULT_KEY_TYPE);
  const cert = await build({
    commonName: deviceId,
    key,
    days: opts.days ?? 365,
    issuer,
    extensions: [
      new x509.BasicConstraintsExtension(false),
      new x509.KeyUsagesExtension(leafUsage(key), true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  return { cert, key: keyPem(key), chain: cert + chainAbove(ca.cert) };
}

/** When the (first) certificate in `pem` stops being valid. */
export function certificateExpiry(pem: string): Date {
  return new Date(parseCert(pem, "certificate").validTo);
}

/** What reuse of stored material, `pki show` and the renewer need to know about a certificate. */
export interface CertFacts {
  commonName: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  ips: string[];
  isCa: boolean;
  selfSigned: boolean;
  keyType: KeyType;
  /** SHA-256 of the DER, upper-case hex with no separators (IoT Hub's thumbprint format is SHA-1 or SHA-256 hex). */
  sha256: string;
  sha1: string;
}

export function certFacts(pem: string): CertFacts {
  const cert = parseCert(pem, "certificate");
  const dnsNames: string[] = [];
  const ips: string[] = [];
  const san = new x509.X509Certificate(cert.raw).getExtension(x509.SubjectAlternativeNameExtension);
  for (const n of san?.names.items ?? []) {
    if (n.type === "dns") dnsNames.push(n.value);
    if (n.type === "ip") ips.push(n.value);
  }
  return {
    commonName: cnOf(cert),
    issuer: cert.issuer,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    dnsNames,
    ips,
    isCa: cert.ca,
    selfSigned: cert.subject === cert.issuer && cert.verify(cert.publicKey),
    keyType: keyTypeOf(cert.publicKey),
    sha256: cert.fingerprint256.replace(/:/g, ""),
    sha1: cert.fingerprint.replace(/:/g, ""),
  };
}

/** True when `childPem` was signed by `issuerPem`'s key and the key `keyPem` belongs to `childPem`. */
export function verifyIssued(childPem: string, issuerPem: string, keyPem?: string): boolean {
  try {
    const child = parseCert(childPem, "certificate");
    const issuer = parseCert(issuerPem, "issuer certificate");
    if (!child.checkIssued(issuer) || !child.verify(issuer.publicKey)) return false;
    if (keyPem === undefined) return true;
    return sameKey(child, createPrivateKey(keyPem));
  } catch {
    // Unparseable or foreign material is simply not a valid issue: the caller regenerates it.
    return false;
  }
}

/** True when the private key `keyPem` belongs to the (first) certificate of `certPem`. */
export function keyMatches(certPem: string, keyPem: string): boolean {
  try {
    return sameKey(parseCert(certPem, "certificate"), createPrivateKey(keyPem));
  } catch {
    // Unparseable material does not match: the caller reports which file is at fault.
    return false;
  }
}
