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
