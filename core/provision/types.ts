import type { IdentityRecord } from "../identity/types.js";

/** Paths on every gateway's HTTPS front. */
export const PROVISION_PATH = "/$strata/provision";
/** Enrollment groups, on the root only. */
export const ENROLLMENTS_PATH = "/$strata/enrollments";

/**
 * An enrollment group, kept at the root only (its keys never leave it). A gateway flashed for the group holds
 * its derived key `HMAC-SHA256(base64decode(groupKey), registrationId)` (as DPS's symmetric-key group
 * enrollment) and proves it by signing its registration with it.
 */
export interface EnrollmentGroup {
  name: string;
  primaryKey: string;
  secondaryKey: string;
  status: "enabled" | "disabled";
  /** Identities made from this group are gateways (edge: they may have children and get certificates). */
  edge: boolean;
  /** Pins placement: only registrations that came through this gateway are accepted. Absent: where it came through. */
  parent?: string;
  createdAt: number;
}

/** What `GET /$strata/enrollments` shows: no keys. */
export type EnrollmentSummary = Omit<EnrollmentGroup, "primaryKey" | "secondaryKey">;

/** Proof of possession of an X.509 identity's private key over the registration resource. */
export interface X509Proof {
  /** PEM: the leaf first, then intermediates. */
  certificate: string;
  /** base64 signature (SHA-256) over `{resource}\n{se}` with the leaf's private key. */
  signature: string;
  se: number;
}

/** How the new gateway wants to be set up (what goes into its strata.toml). */
export interface GatewaySettings {
  hostname: string;
  address?: string;
  data_dir?: string;
  listen?: { address?: string; mqtt?: number; amqp?: number; https?: number };
}

/** `POST /$strata/provision`: from the new gateway to its parent, then hop by hop to the root. */
export interface ProvisionRequest {
  registrationId: string;
  /** Enrollment group; absent for an identity registered at the root beforehand (manual key or X.509). */
  group?: string;
  /** SAS token over `{hub}/registrations/{registrationId}` signed with the derived (or manual) key. */
  sas?: string;
  x509?: X509Proof;
  gateway?: GatewaySettings;
  /** Gateways this request came through, nearest to the new gateway first; each hop appends itself. */
  path: string[];
}

/** The answer, passed down the same path; the first hop adds the bundle for a gateway. */
export interface ProvisionAnswer {
  record: IdentityRecord;
  /** A `strata-child-bundle/1` (config, certificates from the first hop's edge CA, trust bundle). */
  bundle?: import("../cli/child.js").ChildBundle;
}
