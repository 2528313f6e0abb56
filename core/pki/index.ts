// Public face of core/pki: development PKI, certificate issuing, and the Pki service (TOKENS.Pki).
export {
  certFacts,
  certificateExpiry,
  keyMatches,
  keyTypeOf,
  splitPem,
  verifyIssued,
  KEY_TYPES,
  type CertFacts,
  createRootCa,
  issueCaCert,
  issueDeviceCert,
  issueServerCert,
  DEFAULT_KEY_TYPE,
  type CaMaterial,
  type CaOptions,
  type CertAndKey,
  type DeviceCertOptions,
  type IssuedCert,
  type KeyType,
  type ServerCertOptions,
} from "./certs.js";
export { ensureDevPki, DEV_PKI_FILES, type DevPki, type DevPkiFile, type DevPkiOptions } from "./dev-pki.js";
export { Pki, type PkiMaterial } from "./pki.js";
export { CERTIFICATE_CHANGED, type ServerTlsMaterial } from "./pki.js";
export { ServerCertRenewer, RENEW_AT_FRACTION, type RenewerOptions } from "./renewer.js";
export { TlsFileWatcher, TLS_WATCH_INTERVAL_MS } from "./watch.js";
export { writeFileAtomic, KEY_MODE, CERT_MODE, type TlsFiles } from "./files.js";
