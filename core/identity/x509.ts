// X.509 client certificate checks (edgeHub's thumbprint and CA authentication), on node's X509Certificate.
import { createHash, X509Certificate } from "node:crypto";

/** Longest chain walked from the leaf to a trusted CA; guards against loops among presented certificates. */
const MAX_CHAIN = 10;

/** Lower-case hex without separators: thumbprints are written `AB:CD…`, `abcd…` or with spaces. */
export function normalizeThumbprint(t: string): string {
  return t.replace(/[\s:]/g, "").toLowerCase();
}

/** SHA-1 and SHA-256 thumbprints (lower-case hex) of a certificate's DER. */
export function thumbprints(der: Buffer): { sha1: string; sha256: string } {
  return {
    sha1: createHash("sha1").update(der).digest("hex"),
    sha256: createHash("sha256").update(der).digest("hex"),
  };
}

export function parseCertificate(der: Buffer | string): X509Certificate | undefined {
  try {
    return new X509Certificate(der);
  } catch {
    return undefined; // not a DER/PEM certificate: the caller refuses it as malformed
  }
}

/** The subject's common name(s); `subject` is one `KEY=value` per line. */
export function commonNames(cert: X509Certificate): string[] {
  return cert.subject
    .split("\n")
    .filter((l) => l.startsWith("CN="))
    .map((l) => l.slice(3));
}

/** Why a certificate is outside its validity period at `nowMs`, or undefined when it is inside. */
export function validityProblem(cert: X509Certificate, nowMs: number): string | undefined {
  if (nowMs < cert.validFromDate.getTime()) return `certificate ${describe(cert)} is not valid before ${cert.validFrom}`;
  if (nowMs > cert.validToDate.getTime()) return `certificate ${describe(cert)} expired ${cert.validTo}`;
  return undefined;
}

/**
 * Walks from the leaf through the presented intermediates to one of the trusted CAs: each step checks
 * issuer/subject and the signature, each CA its validity and CA flag. Returns a reason, or undefined when
 * the chain verifies.
 */
export function chainProblem(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  trusted: readonly X509Certificate[],
  nowMs: number,
): string | undefined {
  if (trusted.length === 0) return "no trusted CA is configured for X.509 CA authentication";
  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    const anchor = trusted.find((ca) => issued(ca, current));
    if (anchor) return validityProblem(anchor, nowMs);
    const next = intermediates.find((ca) => ca !== current && issued(ca, current));
    if (!next) return `certificate ${describe(current)} was not issued by a trusted CA or a presented intermediate`;
    const invalid = validityProblem(next, nowMs);
    if (invalid) return invalid;
    current = next;
  }
  return `certificate chain is longer than ${MAX_CHAIN}`;
}

function issued(ca: X509Certificate, cert: X509Certificate): boolean {
  // `a.checkIssued(b)` asks whether a was issued by b (names, key identifiers, key usage); verify() checks the signature.
  return ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey);
}

function describe(cert: X509Certificate): string {
  return `"${cert.subject.replace(/\n/g, ", ")}"`;
}
