import type { IdentityId } from "../message.js";

export type IdentityStatus = "enabled" | "disabled";

export type Authentication =
  | { type: "sas"; primaryKey: string; secondaryKey: string }
  | { type: "selfSigned"; primaryThumbprint: string; secondaryThumbprint?: string }
  | { type: "certificateAuthority" };

/** A device, module or edge device, in IoT Hub's terms. */
export interface IdentityRecord {
  id: IdentityId;
  deviceId: string;
  moduleId?: string;
  status: IdentityStatus;
  auth: Authentication;
  /** `capabilities.iotEdge`: a gateway that may act for the identities in its scope. */
  edge: boolean;
  /**
   * The edge device this identity sits under (IoT Hub's deviceScope / parentScopes). A module's parent is
   * its device. Absent for the root gateway and for identities attached directly to it... and for the
   * gateway's own record when it is the root.
   */
  parent?: string;
  /** Bumped on every change; lets a child's cached copy be compared with the parent's. */
  generation: number;
  updatedAt: number;
}

/** Who a connection turned out to be after authentication. */
export interface Principal {
  /** The identity the connection acts as. */
  id: IdentityId;
  deviceId: string;
  moduleId?: string;
  /** How it proved it. */
  method: "sas" | "x509-thumbprint" | "x509-ca" | "on-behalf-of";
  /** For on-behalf-of: the gateway that presented its own credential, and the chain it presented. */
  actor?: IdentityId;
  authChain?: string[];
  /**
   * Service side only (verifyService): the shared access policy the token was signed with. Then `id` and
   * `deviceId` are `$policy:{name}`, which names no device.
   */
  policy?: string;
  /** Seconds since the epoch when the credential stops being valid (SAS `se`, certificate notAfter). */
  expiresAt?: number;
}

/** A parsed `SharedAccessSignature sr=…&sig=…&se=…[&skn=…]`. `sr` is kept exactly as sent. */
export interface SasToken {
  sr: string;
  sig: string;
  se: number;
  skn?: string;
}

export type AuthFailure =
  | "malformed"
  | "unknown-identity"
  | "disabled"
  | "expired"
  | "bad-signature"
  | "wrong-audience"
  | "wrong-identity"
  | "not-in-scope"
  | "bad-certificate"
  /** Service side: the policy exists and the signature is good, but it lacks the right asked for. */
  | "insufficient-rights";

export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: AuthFailure; detail: string };

/** What a transport already established about the client certificate it hands to verifyCertificate. */
export interface CertificateContext {
  /**
   * The TLS handshake verified the client's chain against this gateway's trust bundle (`socket.authorized` on a
   * server with `requestCert` and `ca` = the trust bundle, the same bundle Identities trusts). Node's server side
   * hands over only the leaf and drops the intermediates the client sent, so a leaf issued under an edge CA can
   * be accepted for CA authentication only on this fact. CN, validity and thumbprint checks still apply.
   */
  tlsVerified?: boolean;
}

/** A shared access policy of the service side (root): `iothubowner` and friends. */
export interface AccessPolicy {
  name: string;
  primaryKey: string;
  secondaryKey?: string;
  rights: ReadonlyArray<"RegistryRead" | "RegistryWrite" | "ServiceConnect" | "DeviceConnect">;
}

export type IdentityEvent =
  | { type: "changed"; record: IdentityRecord; previous?: IdentityRecord }
  | { type: "removed"; record: IdentityRecord };

/**
 * Core's identity service. It decides who a connection is and what it may act for; heads only carry the
 * credentials to it.
 */
export interface Identities {
  /** This gateway's own device id. */
  readonly self: string;
  get(id: IdentityId): IdentityRecord | undefined;
  list(): IdentityRecord[];
  /**
   * Create or replace (keys rotate by replacing); persisted before it resolves; emits "changed". A given
   * `generation` newer than the stored one is kept (a child storing its parent's copy); otherwise it bumps.
   */
  put(record: Omit<IdentityRecord, "generation" | "updatedAt"> & Partial<Pick<IdentityRecord, "generation">>): Promise<IdentityRecord>;
  remove(id: IdentityId): Promise<void>;
  on(listener: (e: IdentityEvent) => void): () => void;

  // `now` in the verify methods is milliseconds since the epoch (Date.now()), the unit of every other time
  // in core; SAS `se` and Principal.expiresAt stay in seconds as on the wire.

  /** Verify a SAS token presented by a connection claiming to be `claimed`. */
  verifySas(claimed: IdentityId, token: string, now?: number): AuthResult;
  /**
   * Verify a TLS client certificate chain (leaf first, DER) presented by a connection claiming `claimed`.
   * `context` carries what the transport already established (see CertificateContext).
   */
  verifyCertificate(claimed: IdentityId, chainDer: readonly Buffer[], now?: number, context?: CertificateContext): AuthResult;
  /**
   * On-behalf-of: `actor` (a child gateway, authenticated with its own credential) acts for `target`,
   * presenting `authChain` (target first, actor last). Checks the chain against this gateway's own view.
   */
  verifyOnBehalfOf(actor: Principal, target: IdentityId, authChain: readonly string[]): AuthResult;
  /** The chain from `id` up to this gateway (id first, self last), or undefined when out of scope. */
  authChain(id: IdentityId): string[] | undefined;
  /** Whether `id` is this gateway, its module, or anywhere below it. */
  inScope(id: IdentityId): boolean;
  /** Verify a service-side token (`skn=` a policy) for `right`; audience is the hub name. */
  verifyService(token: string, right: AccessPolicy["rights"][number], now?: number): AuthResult;
}
