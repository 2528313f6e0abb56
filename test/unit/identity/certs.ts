// Test certificates made with node-forge. Keys come from node's native generator (fast); one key pair
// signs everything, and a second one exists only to forge a signature.
import { generateKeyPairSync } from "node:crypto";
import forge from "node-forge";

function forgeKeys(): forge.pki.rsa.KeyPair {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const priv = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { privateKey: priv, publicKey: forge.pki.setRsaPublicKey(priv.n, priv.e) };
}

export const KEYS = forgeKeys();
export const OTHER_KEYS = forgeKeys();

export interface TestCert {
  cert: forge.pki.Certificate;
  der: Buffer;
  pem: string;
}

const DAY = 86_400_000;
let serial = 1;

export function makeCert(opts: {
  cn: string;
  ca?: boolean;
  issuer?: TestCert;
  /** The key that signs it (default KEYS; OTHER_KEYS forges a signature). */
  signer?: forge.pki.rsa.KeyPair;
  notBefore?: Date;
  notAfter?: Date;
}): TestCert {
  const cert = forge.pki.createCertificate();
  cert.publicKey = KEYS.publicKey;
  cert.serialNumber = (serial++).toString(16).padStart(4, "0");
  cert.validity.notBefore = opts.notBefore ?? new Date(Date.now() - DAY);
  cert.validity.notAfter = opts.notAfter ?? new Date(Date.now() + 365 * DAY);
  const subject = [{ name: "commonName", value: opts.cn }, { name: "organizationName", value: "Strata tests" }];
  cert.setSubject(subject);
  cert.setIssuer(opts.issuer ? opts.issuer.cert.subject.attributes : subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: opts.ca ?? false, critical: true },
    { name: "keyUsage", critical: true, ...(opts.ca ? { keyCertSign: true, cRLSign: true } : { digitalSignature: true, keyEncipherment: true }) },
  ]);
  cert.sign((opts.signer ?? KEYS).privateKey, forge.md.sha256.create());
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), "binary");
  return { cert, der, pem: forge.pki.certificateToPem(cert) };
}
