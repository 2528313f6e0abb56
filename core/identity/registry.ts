// Core's Identities service: records in memory (auth checks are synchronous and hot), written through to
// the store's Kv before a change is visible.
import type { X509Certificate } from "node:crypto";
import { StrataError } from "../errors.js";
import type { Logger } from "../log.js";
import type { IdentityId } from "../message.js";
import type { Kv } from "../store/types.js";
import { sameId, walkAuthChain } from "./chain.js";
import { decodeSig, parseResource, signatureMatches, tryParseSasToken } from "./sas.js";
import type {
  AccessPolicy,
  AuthFailure,
  AuthResult,
  CertificateContext,
  Identities,
  IdentityEvent,
  IdentityRecord,
  Principal,
} from "./types.js";
import { validatePolicy, validateRecord } from "./validate.js";
import { chainProblem, commonNames, normalizeThumbprint, parseCertificate, thumbprints, validityProblem } from "./x509.js";

/** edgeHub's allowance for clocks that disagree: a token is still good this long after its `se`. */
export const SAS_CLOCK_SKEW_SECS = 300;
/** The policy that holds every right whatever its `rights` list says (IoT Hub's built-in owner). */
export const OWNER_POLICY = "iothubowner";

export interface IdentityRegistryOptions {
  /** This gateway's own device id. */
  self: string;
  /** The IoT Hub name devices put in their tokens (`HostName=`). */
  hubName: string;
  /** This gateway's own host names, also accepted as a token audience (a device's `GatewayHostName`). */
  hostnames: string[];
  kv: Kv<IdentityRecord>;
  /** Service-side policies (root only): kept in a Kv (loaded by load()) or given fixed. */
  policies?: Kv<AccessPolicy> | AccessPolicy[];
  /** PEM CA certificates (bundles allowed) that X.509 CA-authenticated devices must chain to. */
  trustedCas?: string[];
  logger: Logger;
}

type PutInput = Parameters<Identities["put"]>[0];

function fail(reason: AuthFailure, detail: string): AuthResult {
  return { ok: false, reason, detail };
}

function deepFreeze<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (v && typeof v === "object") deepFreeze(v);
  return Object.freeze(o);
}

/** One PEM string may hold a bundle: split it into certificates. */
function parseCaBundle(pems: readonly string[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  pems.forEach((pem, i) => {
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    const certs = blocks.map(parseCertificate);
    if (blocks.length === 0 || certs.some((c) => c === undefined)) {
      throw new StrataError("STRATA_IDENTITY_CA_INVALID", `trustedCas[${i}] is not a PEM certificate: give the CA file's contents (-----BEGIN CERTIFICATE-----)`);
    }
    for (const c of certs) {
      if (!c!.ca) throw new StrataError("STRATA_IDENTITY_CA_INVALID", `trustedCas[${i}] (${c!.subject.replace(/\n/g, ", ")}) is not a CA certificate (basicConstraints CA:TRUE): give the issuing CA, not a leaf`);
      out.push(c!);
    }
  });
  return out;
}

export class IdentityRegistry implements Identities {
  readonly self: string;
  private readonly hubName: string;
  private readonly audiences: Set<string>;
  private readonly kv: Kv<IdentityRecord>;
  private readonly policyKv: Kv<AccessPolicy> | undefined;
  private readonly logger: Logger;
  private records = new Map<IdentityId, IdentityRecord>();
  private policies = new Map<string, AccessPolicy>();
  private trusted: X509Certificate[];
  private readonly listeners = new Set<(e: IdentityEvent) => void>();
  private loaded = false;
  /** Writes run one at a time so the Kv and the in-memory map agree on the order of changes. */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(opts: IdentityRegistryOptions) {
    this.self = opts.self;
    this.hubName = opts.hubName;
    this.audiences = new Set([opts.hubName, ...opts.hostnames].map((h) => h.toLowerCase()));
    this.kv = opts.kv;
    this.logger = opts.logger;
    if (Array.isArray(opts.policies)) {
      for (const p of opts.policies) {
        validatePolicy(p);
        this.policies.set(p.name, deepFreeze(structuredClone(p)));
      }
    } else {
      this.policyKv = opts.policies;
    }
    this.trusted = parseCaBundle(opts.trustedCas ?? []);
  }

  /** Reads every record (and policy, when kept in a Kv) into memory. Call before serving connections. */
  async load(): Promise<void> {
    const records = new Map<IdentityId, IdentityRecord>();
    for await (const [key, record] of this.kv.entries()) {
      try {
        validateRecord(record);
        if (record.id !== key) throw new StrataError("STRATA_IDENTITY_INVALID", `stored under key ${key} but its id is ${record.id}`);
        records.set(record.id, deepFreeze(record));
      } catch (err) {
        // One bad record must not keep the gateway from starting; it is refused until rewritten.
        this.logger.warn({ err, key }, "identity record skipped");
      }
    }
    this.records = records;
    if (this.policyKv) {
      const policies = new Map<string, AccessPolicy>();
      for await (const [key, policy] of this.policyKv.entries()) {
        try {
          validatePolicy(policy);
          policies.set(policy.name, deepFreeze(policy));
        } catch (err) {
          this.logger.warn({ err, key }, "access policy skipped");
        }
      }
      this.policies = policies;
    }
    this.loaded = true;
    this.logger.info({ identities: records.size, policies: this.policies.size }, "identities loaded");
  }

  /** Replaces the CA certificates trusted for X.509 CA authentication (e.g. after a PKI renewal). */
  setTrustedCas(pems: string[]): void {
    this.trusted = parseCaBundle(pems);
  }

  get(id: IdentityId): IdentityRecord | undefined {
    return this.records.get(id);
  }

  list(): IdentityRecord[] {
    return [...this.records.values()];
  }

  async put(input: PutInput): Promise<IdentityRecord> {
    this.assertLoaded("put");
    const { generation, ...fields } = input;
    validateRecord(fields);
    return this.serialized(async () => {
      const previous = this.records.get(fields.id);
      const record: IdentityRecord = deepFreeze({
        ...structuredClone(fields),
        // A newer generation given (a child storing its parent's copy) is kept so the two copies compare
        // equal; anything else (a record spread from get() and edited) bumps it.
        generation: generation !== undefined && generation > (previous?.generation ?? 0) ? generation : (previous?.generation ?? 0) + 1,
        updatedAt: Date.now(),
      });
      await this.kv.put(record.id, record);
      this.records.set(record.id, record);
      this.emit(previous ? { type: "changed", record, previous } : { type: "changed", record });
      return record;
    });
  }

  /** Removes an identity; removing a device removes its modules too, as IoT Hub does. */
  async remove(id: IdentityId): Promise<void> {
    this.assertLoaded("remove");
    return this.serialized(async () => {
      const target = this.records.get(id);
      if (!target) return;
      const doomed = target.moduleId === undefined
        ? [...this.records.values()].filter((r) => r.deviceId === target.deviceId && r.moduleId !== undefined)
        : [];
      for (const record of [...doomed, target]) {
        await this.kv.del(record.id);
        this.records.delete(record.id);
        this.emit({ type: "removed", record });
      }
    });
  }

  on(listener: (e: IdentityEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Adds or replaces a service-side policy (written to the policy Kv when there is one). */
  async putPolicy(policy: AccessPolicy): Promise<void> {
    validatePolicy(policy);
    return this.serialized(async () => {
      const frozen = deepFreeze(structuredClone(policy));
      if (this.policyKv) await this.policyKv.put(frozen.name, frozen);
      this.policies.set(frozen.name, frozen);
    });
  }

  getPolicy(name: string): AccessPolicy | undefined {
    return this.policies.get(name);
  }

  verifySas(claimed: IdentityId, token: string, now = Date.now()): AuthResult {
    const parsed = tryParseSasToken(token);
    if (!parsed.ok) return fail("malformed", parsed.detail);
    const sas = parsed.token;
    const resource = parseResource(sas.sr);
    if (!resource.ok) return fail("malformed", resource.detail);
    if (resource.deviceId === undefined) return fail("malformed", "a device token's resource is {host}/devices/{d}[/modules/{m}]");
    if (!this.audiences.has(resource.host.toLowerCase())) {
      return fail("wrong-audience", `token audience "${resource.host}" is neither the hub name nor a host name of this gateway`);
    }
    const tokenId = resource.moduleId === undefined ? resource.deviceId : `${resource.deviceId}/${resource.moduleId}`;
    if (tokenId !== claimed) return fail("wrong-identity", `token is for ${tokenId}, the connection claims ${claimed}`);
    const sig = decodeSig(sas.sig);
    if (!sig) return fail("malformed", "SAS field sig is not URL-encoded base64");

    const record = this.records.get(claimed);
    if (!record) return fail("unknown-identity", `${claimed} is not a known identity`);
    if (record.status !== "enabled") return fail("disabled", `${claimed} is disabled`);
    const device = record.moduleId === undefined ? undefined : this.records.get(record.deviceId);
    if (device && device.status !== "enabled") return fail("disabled", `${claimed}'s device ${device.id} is disabled`);
    if (sas.se + SAS_CLOCK_SKEW_SECS < now / 1000) {
      return fail("expired", `token expired at ${new Date(sas.se * 1000).toISOString()} (allowing ${SAS_CLOCK_SKEW_SECS} s of clock skew)`);
    }

    const keys: (string | undefined)[] = [];
    if (record.auth.type === "sas") keys.push(record.auth.primaryKey, record.auth.secondaryKey);
    // A module may present a token signed with its device's key (edgeHub allows it).
    if (device?.auth.type === "sas") keys.push(device.auth.primaryKey, device.auth.secondaryKey);
    if (keys.length === 0) return fail("bad-signature", `${claimed} authenticates with X.509, not SAS`);
    if (!signatureMatches(sas, sig, keys)) {
      return fail("bad-signature", `signature matches no key of ${claimed}${device ? ` or of its device` : ""}`);
    }
    return { ok: true, principal: this.principal(record, "sas", sas.se) };
  }

  verifyCertificate(claimed: IdentityId, chainDer: readonly Buffer[], now = Date.now(), context: CertificateContext = {}): AuthResult {
    if (claimed.includes("/")) return fail("bad-certificate", `${claimed} is a module: X.509 authentication is for devices only, modules use SAS`);
    if (chainDer.length === 0) return fail("malformed", "no client certificate was presented");
    const certs = chainDer.map((der) => parseCertificate(der));
    if (certs.some((c) => c === undefined)) return fail("malformed", "a presented certificate is not valid DER");
    const [leaf, ...intermediates] = certs as X509Certificate[];

    const record = this.records.get(claimed);
    if (!record) return fail("unknown-identity", `${claimed} is not a known identity`);
    if (record.status !== "enabled") return fail("disabled", `${claimed} is disabled`);
    const expired = validityProblem(leaf!, now);
    if (expired) return fail("bad-certificate", expired);
    const expiresAt = Math.floor(leaf!.validToDate.getTime() / 1000);

    const auth = record.auth;
    if (auth.type === "selfSigned") {
      const tp = thumbprints(chainDer[0]!);
      const allowed = [auth.primaryThumbprint, auth.secondaryThumbprint].filter((t): t is string => !!t).map(normalizeThumbprint);
      if (!allowed.some((t) => t === tp.sha1 || t === tp.sha256)) {
        return fail("bad-certificate", `certificate thumbprint matches neither thumbprint registered for ${claimed}`);
      }
      return { ok: true, principal: this.principal(record, "x509-thumbprint", expiresAt) };
    }
    if (auth.type === "certificateAuthority") {
      const cns = commonNames(leaf!);
      if (cns.length !== 1 || cns[0] !== record.deviceId) {
        return fail("bad-certificate", `certificate CN is "${cns.join(",")}", it must be the device id "${record.deviceId}"`);
      }
      // A chain the handshake verified against the same trust bundle needs no second walk (and cannot have one:
      // node drops the presented intermediates server-side). A chain walk that succeeds is accepted either way.
      const problem = chainProblem(leaf!, intermediates, this.trusted, now);
      if (problem && !context.tlsVerified) return fail("bad-certificate", problem);
      return { ok: true, principal: this.principal(record, "x509-ca", expiresAt) };
    }
    return fail("bad-certificate", `${claimed} authenticates with SAS, not X.509`);
  }

  verifyOnBehalfOf(actor: Principal, target: IdentityId, authChain: readonly string[]): AuthResult {
    if (actor.method === "on-behalf-of") return fail("wrong-identity", `${actor.id} acts for another identity itself and cannot delegate further`);
    if (actor.moduleId !== undefined) return fail("not-in-scope", `${actor.id} is a module, only an edge device acts for others`);
    const actorRecord = this.records.get(actor.id);
    if (!actorRecord) return fail("unknown-identity", `actor ${actor.id} is not a known identity`);
    if (actorRecord.status !== "enabled") return fail("disabled", `actor ${actor.id} is disabled`);
    if (!actorRecord.edge) return fail("not-in-scope", `actor ${actor.id} is not an edge device`);
    if (authChain.length === 0) return fail("malformed", "the auth chain is empty");
    if (!sameId(authChain[authChain.length - 1]!, actor.id)) {
      return fail("wrong-identity", `the auth chain ends with ${authChain[authChain.length - 1]}, not the authenticated actor ${actor.id}`);
    }
    if (!sameId(authChain[0]!, target)) return fail("wrong-identity", `the auth chain starts with ${authChain[0]}, not the target ${target}`);

    const walk = walkAuthChain(target, this.self, (id) => this.records.get(id));
    if (!walk.ok) {
      return this.records.has(target) ? fail("not-in-scope", walk.detail) : fail("unknown-identity", `${target} is not a known identity`);
    }
    const at = walk.chain.findIndex((id) => sameId(id, actor.id));
    if (at < 0) return fail("not-in-scope", `${target} is not below ${actor.id} (its chain is ${walk.chain.join(";")})`);
    const expected = walk.chain.slice(0, at + 1);
    if (expected.length !== authChain.length || expected.some((id, i) => !sameId(id, authChain[i]!))) {
      return fail("not-in-scope", `auth chain ${authChain.join(";")} does not match this gateway's ${expected.join(";")}`);
    }
    // Revoking a gateway cuts off its whole subtree: every identity between target and actor must be enabled.
    for (const id of expected.slice(0, -1)) {
      const r = this.records.get(id);
      if (r && r.status !== "enabled") return fail("disabled", id === expected[0] ? `${target} is disabled` : `${id} on the chain to ${target} is disabled`);
    }
    const record = this.records.get(expected[0]!);
    if (!record) return fail("unknown-identity", `${target} has no identity record`);
    const principal = this.principal(record, "on-behalf-of", actor.expiresAt);
    principal.actor = actorRecord.id;
    principal.authChain = expected;
    return { ok: true, principal };
  }

  authChain(id: IdentityId): string[] | undefined {
    const walk = walkAuthChain(id, this.self, (i) => this.records.get(i));
    if (walk.ok) return walk.chain;
    if (this.records.has(id)) this.logger.debug({ id, detail: walk.detail }, "identity out of scope");
    return undefined;
  }

  inScope(id: IdentityId): boolean {
    return walkAuthChain(id, this.self, (i) => this.records.get(i)).ok;
  }

  verifyService(token: string, right: AccessPolicy["rights"][number], now = Date.now()): AuthResult {
    const parsed = tryParseSasToken(token);
    if (!parsed.ok) return fail("malformed", parsed.detail);
    const sas = parsed.token;
    if (sas.skn === undefined) {
      return fail("wrong-identity", "a service call needs a policy token (skn=<policy>, e.g. iothubowner); a device token cannot call the service API");
    }
    const resource = parseResource(sas.sr);
    if (!resource.ok) return fail("malformed", resource.detail);
    // The service SDK signs for the HostName it connects to: the hub name, or this gateway's own host name
    // (a root reached as "gw1.plant" serving hub "plant1"), as for device tokens.
    if (!this.audiences.has(resource.host.toLowerCase())) {
      return fail("wrong-audience", `token audience "${resource.host}" is neither the hub name "${this.hubName}" nor a host name of this gateway`);
    }
    const sig = decodeSig(sas.sig);
    if (!sig) return fail("malformed", "SAS field sig is not URL-encoded base64");
    const policy = this.policies.get(sas.skn);
    if (!policy) return fail("unknown-identity", `no shared access policy is named "${sas.skn}"`);
    if (sas.se + SAS_CLOCK_SKEW_SECS < now / 1000) {
      return fail("expired", `token expired at ${new Date(sas.se * 1000).toISOString()} (allowing ${SAS_CLOCK_SKEW_SECS} s of clock skew)`);
    }
    if (!signatureMatches(sas, sig, [policy.primaryKey, policy.secondaryKey])) {
      return fail("bad-signature", `signature matches no key of policy ${policy.name}`);
    }
    if (policy.name !== OWNER_POLICY && !policy.rights.includes(right)) {
      return fail("insufficient-rights", `policy ${policy.name} lacks the ${right} right`);
    }
    const id = `$policy:${policy.name}`;
    return { ok: true, principal: { id, deviceId: id, method: "sas", policy: policy.name, expiresAt: sas.se } };
  }

  private principal(record: IdentityRecord, method: Principal["method"], expiresAt: number | undefined): Principal {
    const p: Principal = { id: record.id, deviceId: record.deviceId, method };
    if (record.moduleId !== undefined) p.moduleId = record.moduleId;
    if (expiresAt !== undefined) p.expiresAt = expiresAt;
    return p;
  }

  private emit(event: IdentityEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        // A listener's bug must not undo a change that is already durable, nor stop the other listeners.
        this.logger.error({ err, id: event.record.id, event: event.type }, "identity listener failed");
      }
    }
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.writes.then(work, work);
    this.writes = run.catch(() => undefined); // the caller gets the failure; the queue moves on
    return run;
  }

  private assertLoaded(op: string): void {
    if (!this.loaded) {
      throw new StrataError("STRATA_IDENTITY_NOT_LOADED", `identities.${op}() before load(): await registry.load() at start-up first`);
    }
  }
}
