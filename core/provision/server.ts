// `POST /$strata/provision` on every gateway (the new gateway's parent, each hop above it, the root) and the
// enrollment-group routes on the root.
import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { HttpFront } from "../http/front.js";
import type { IdentityRegistry } from "../identity/registry.js";
import type { IdentityRecord } from "../identity/types.js";
import type { Logger } from "../log.js";
import { authenticate, type AuthContext, type Requester } from "../scope/auth.js";
import { errorText, GatewayUnreachable, type GatewayClient } from "../scope/https-client.js";
import { applyScopeAnswer } from "../scope/sync.js";
import { gatewayBundle, type IssuerFacts } from "./bundle.js";
import { decide } from "./decide.js";
import { EnrollmentGroups, summary } from "./enrollments.js";
import { ENROLLMENTS_PATH, PROVISION_PATH, type ProvisionAnswer, type ProvisionRequest } from "./types.js";

const deviceId = z.string().regex(/^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/, { message: "must be a device id: 1–128 of A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ '" });
export const provisionRequestSchema = z.strictObject({
  registrationId: deviceId,
  group: z.string().min(1).optional(),
  sas: z.string().min(1).optional(),
  x509: z.strictObject({ certificate: z.string().min(1), signature: z.string().min(1), se: z.int() }).optional(),
  gateway: z.strictObject({
    hostname: z.string().min(1),
    address: z.string().min(1).optional(),
    data_dir: z.string().min(1).optional(),
    listen: z.strictObject({ address: z.string().optional(), mqtt: z.int().optional(), amqp: z.int().optional(), https: z.int().optional() }).optional(),
  }).optional(),
  path: z.array(deviceId).max(64).default([]),
});

const enrollmentBody = z.strictObject({
  primaryKey: z.string().optional(),
  secondaryKey: z.string().optional(),
  status: z.enum(["enabled", "disabled"]).optional(),
  edge: z.boolean().optional(),
  parent: z.string().min(1).nullable().optional(),
});

export interface ProvisionServerOptions {
  hub: string;
  identities: IdentityRegistry;
  auth: AuthContext;
  /** The root's enrollment groups; absent below the root. */
  groups?: EnrollmentGroups;
  /** The client to the parent; absent on the root. */
  parent?: Pick<GatewayClient, "request" | "target">;
  /** What this gateway needs to issue a new child gateway's bundle; absent: it answers without one. */
  issuer?: () => IssuerFacts | undefined;
  logger: Logger;
}

export class ProvisionServer {
  constructor(private readonly opts: ProvisionServerOptions) {}

  mount(front: HttpFront): void {
    front.route({ method: "POST", url: PROVISION_PATH, handler: (req, reply) => this.provision(req, reply) });
    if (this.opts.groups) {
      front.route({ method: "GET", url: ENROLLMENTS_PATH, handler: (req, reply) => this.listGroups(req, reply) });
      front.route({ method: "PUT", url: `${ENROLLMENTS_PATH}/:name`, handler: (req, reply) => this.putGroup(req, reply) });
      front.route({ method: "DELETE", url: `${ENROLLMENTS_PATH}/:name`, handler: (req, reply) => this.removeGroup(req, reply) });
    }
  }

  private refuse(reply: FastifyReply, status: number, message: string, log: Record<string, unknown> = {}): void {
    this.opts.logger.info({ status, reason: message, ...log }, "provisioning refused");
    void reply.code(status).send({ message });
  }

  /** A device with no token is the new gateway itself (path empty); a token must be a direct child's (a forwarding hop). */
  private requester(req: FastifyRequest, reply: FastifyReply, allowed: Requester["kind"][]): Requester | null | undefined {
    if (req.headers.authorization === undefined) return null;
    const outcome = authenticate(req.headers.authorization, this.opts.auth);
    if (!outcome.ok) return void this.refuse(reply, outcome.status, outcome.message);
    if (!allowed.includes(outcome.requester.kind)) return void this.refuse(reply, 403, `${outcome.requester.id} may not call ${req.method} ${req.url.split("?")[0]} (allowed: ${allowed.join(", ")})`);
    return outcome.requester;
  }

  private async provision(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const requester = this.requester(req, reply, ["child"]);
    if (requester === undefined) return;
    const parsed = provisionRequestSchema.safeParse(req.body);
    if (!parsed.success) {
      return this.refuse(reply, 400, `invalid registration: ${parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`);
    }
    const body: ProvisionRequest = parsed.data;
    const self = this.opts.identities.self;
    // A forwarding hop vouches for itself only: it must be the last entry of the path it sends.
    if (requester && body.path.at(-1) !== requester.id) return this.refuse(reply, 403, `a forwarded registration's path must end with the forwarding gateway ${requester.id}`);
    if (!requester && body.path.length > 0) return this.refuse(reply, 401, "a registration with a path comes from a gateway: send its SAS token");
    const firstHop = !requester;
    const log = { id: body.registrationId, group: body.group, path: body.path };

    let answer: ProvisionAnswer;
    if (!this.opts.parent) {
      const d = await decide(body, { hub: this.opts.hub, identities: this.opts.identities, group: (n) => this.opts.groups!.get(n) });
      if (!d.ok) return this.refuse(reply, d.status, d.message, log);
      this.opts.logger.info({ ...log, parent: d.record.parent, created: d.created }, "gateway provisioned");
      answer = { record: d.record };
    } else {
      let res;
      try {
        res = await this.opts.parent.request("POST", PROVISION_PATH, { ...body, path: [...body.path, self] }, { timeoutMs: 20_000 });
      } catch (err) {
        const detail = err instanceof GatewayUnreachable ? err.message : String(err);
        this.opts.logger.warn({ ...log, parent: this.opts.parent.target, err }, "registration not forwarded: parent unreachable");
        return void reply.code(502).send({ message: `the root is unreachable from ${self}: ${detail}; provisioning needs the root, the new gateway retries` });
      }
      if (res.status !== 200) return void reply.code(res.status >= 400 ? res.status : 502).send({ message: errorText(res.body) });
      answer = res.body as ProvisionAnswer;
      await this.cache(answer.record);
    }
    if (firstHop && answer.record.edge && body.gateway) {
      const issuer = this.opts.issuer?.();
      if (!issuer) return this.refuse(reply, 409, `${self} has no edge CA to issue ${body.registrationId}'s certificates: set [tls] edge_ca_cert_file and edge_ca_key_file`, log);
      answer = { record: answer.record, bundle: await gatewayBundle(answer.record, body.gateway, issuer) };
    }
    return void reply.code(200).send(answer);
  }

  /** Keeps the new record at once (scope sync would bring it within a poll), so the new gateway can connect now. */
  private async cache(record: IdentityRecord): Promise<void> {
    const ids = this.opts.identities;
    try {
      if (ids.inScope(record.parent ?? "")) await applyScopeAnswer(ids, { epoch: "", cursor: 0, full: false, records: [record], removed: [] });
    } catch (err) {
      this.opts.logger.warn({ err, id: record.id }, "provisioned identity not cached locally; scope sync will bring it");
    }
  }

  private listGroups(req: FastifyRequest, reply: FastifyReply): Promise<void> | void {
    const who = this.requester(req, reply, ["self", "owner"]);
    if (who === undefined) return;
    if (who === null) return this.refuse(reply, 401, "enrollment groups need a token: this gateway's own (strata CLI) or iothubowner");
    return this.opts.groups!.list().then((groups) => void reply.send({ groups: groups.map(summary) }));
  }

  private async putGroup(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const who = this.requester(req, reply, ["self", "owner"]);
    if (who === undefined) return;
    if (who === null) return this.refuse(reply, 401, "enrollment groups need a token: this gateway's own (strata CLI) or iothubowner");
    const parsed = enrollmentBody.safeParse(req.body ?? {});
    if (!parsed.success) return this.refuse(reply, 400, `invalid enrollment group: ${parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`);
    const name = (req.params as { name: string }).name;
    const parent = parsed.data.parent;
    if (parent) {
      const p = this.opts.identities.get(parent);
      if (parent !== this.opts.identities.self && (!p || !p.edge || p.moduleId !== undefined)) return this.refuse(reply, 409, `parent ${parent} is not a known gateway; register it first`);
    }
    try {
      const g = await this.opts.groups!.put(name, parsed.data);
      this.opts.logger.info({ group: name, status: g.status, parent: g.parent, by: who.id }, "enrollment group saved");
      // The keys are answered once, to the caller that made or changed the group (the factory line needs them).
      return void reply.send(g);
    } catch (err) {
      return this.refuse(reply, 400, (err as Error).message);
    }
  }

  private async removeGroup(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const who = this.requester(req, reply, ["self", "owner"]);
    if (who === undefined) return;
    if (who === null) return this.refuse(reply, 401, "enrollment groups need a token: this gateway's own (strata CLI) or iothubowner");
    const name = (req.params as { name: string }).name;
    if (!(await this.opts.groups!.remove(name))) return this.refuse(reply, 404, `enrollment group "${name}" does not exist`);
    this.opts.logger.info({ group: name, by: who.id }, "enrollment group removed");
    return void reply.send({ removed: name });
  }
}
