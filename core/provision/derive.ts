// Key derivation and proofs of a registration (DPS's symmetric-key group enrollment, extended to X.509).
import { createHmac, createPublicKey, sign, verify, X509Certificate } from "node:crypto";
import { SAS_CLOCK_SKEW_SECS } from "../identity/registry.js";
import { decodeSig, signatureMatches, signSas, tryParseSasToken } from "../identity/sas.js";
import type { X509Proof } from "./types.js";

/** A device's key in an enrollment group: `base64(HMAC-SHA256(base64decode(groupKey), registrationId))`. */
export function deriveDeviceKey(groupKey: string, registrationId: string): string {
  return createHmac("sha256", Buffer.from(groupKey, "base64")).update(registrationId, "utf8").digest("base64");
}

/** The resource a registration proof is signed over. */
export function registrationResource(hub: string, registrationId: string): string {
  return `${hub}/registrations/${registrationId}`;
}

/** A registration SAS token, valid for `validSecs` (short: it travels through every hop). */
export function registrationToken(hub: string, registrationId: string, key: string, validSecs = 300, now = Date.now()): string {
  return signSas({ resource: registrationResource(hub, registrationId), key, expirySecs: Math.floor(now / 1000) + validSecs });
}

/** Why a registration SAS token does not prove `keys` for `registrationId` on `hub`; undefined when it does. */
export function sasProofProblem(token: string, hub: string, registrationId: string, keys: readonly string[], now = Date.now()): string | undefined {
  const parsed = tryParseSasToken(token);
  if (!parsed.ok) return `malformed token: ${parsed.detail}`;
  const expected = encodeURIComponent(registrationResource(hub, registrationId));
  if (parsed.token.sr.toLowerCase() !== expected.toLowerCase()) return `token resource is "${decodeURIComponent(parsed.token.sr)}", expected "${registrationResource(hub, registrationId)}"`;
  if (parsed.token.se + SAS_CLOCK_SKEW_SECS < now / 1000) return `token expired at ${new Date(parsed.token.se * 1000).toISOString()} (check the gateway's clock)`;
  const sig = decodeSig(parsed.token.sig);
  if (!sig || !signatureMatches(parsed.token, sig, keys)) return "signature does not match the key";
  return undefined;
}

/** Signs an X.509 proof of possession with the identity's private key. */
export function x509Proof(hub: string, registrationId: string, certificatePem: string, keyPem: string, validSecs = 300, now = Date.now()): X509Proof {
  const se = Math.floor(now / 1000) + validSecs;
  const data = Buffer.from(`${registrationResource(hub, registrationId)}\n${se}`);
  return { certificate: certificatePem, signature: sign("sha256", data, keyPem).toString("base64"), se };
}

/** The DER chain of the proof when the signature verifies with the leaf's key; a reason otherwise. */
export function x509ProofChain(proof: X509Proof, hub: string, registrationId: string, now = Date.now()): Buffer[] | string {
  const pems = proof.certificate.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) return "x509.certificate holds no PEM certificate";
  if (proof.se + SAS_CLOCK_SKEW_SECS < now / 1000) return `proof expired at ${new Date(proof.se * 1000).toISOString()} (check the gateway's clock)`;
  let certs: X509Certificate[];
  try {
    certs = pems.map((p) => new X509Certificate(p));
  } catch (err) {
    return `x509.certificate is not a valid certificate: ${(err as Error).message}`;
  }
  const data = Buffer.from(`${registrationResource(hub, registrationId)}\n${proof.se}`);
  const ok = verify("sha256", data, createPublicKey(certs[0]!.publicKey.export({ type: "spki", format: "pem" })), Buffer.from(proof.signature, "base64"));
  if (!ok) return "the signature does not verify with the certificate's key";
  return certs.map((c) => c.raw);
}
