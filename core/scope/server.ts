// The `/$strata/*` routes every gateway serves on its HTTPS front: scope sync for its children, registration
// (created at the root, forwarded hop by hop below it), and the children list for `strata child list`.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { HttpFront } from "../http/front.js";
import type { Hub } from "../hub/types.js";
import { ensureEdgeModules } from "../identity/edge-modules.js";
import type { IdentityRegistry } from "../identity/registry.js";
import type { Logger } from "../log.js";
import { authenticate, type AuthContext, type Requester } from "./auth.js";
import { ScopeChangeLog } from "./change-log.js";
import { errorText, GatewayUnreachable, type GatewayClient } from "./https-client.js";
import { checkRegistration, recordToStore, registrationId, registrationSchema } from "./registration.js";
import { subtreeOf } from "./subtree.js";
import { applyScopeAnswer } from "./sync.js";
import type { Store } from "../store/types.js";
import { CHILDREN_PATH, DEADLETTERS_PATH, IDENTITIES_PATH, SCOPE_PATH, type ChildState, type DeadLettersAnswer } from "./types.js";

/** Longest a scope poll is held open, whatever the child asks. */
export const MAX_WAIT_SECS = 60;

export interface ScopeServerOptions {
  identities: IdentityRegistry;
  hub: Pick<Hub, "isConnected">;
  hubName: string;
  hostnames: readonly string[];
  /** This gateway's own key (`[identity] key_file`), when it has one. */
  selfKey?: string;
  /** The client to the parent; absent on the root. */
  parent?: Pick<GatewayClient, "request" | "target">;
  logger: Logger;
  maxDepartures?: number;
  /** Serves `GET /$strata/deadletters` when given. */
  store?: Pick<Store, "deadLetters" | "stats">;
}

export class ScopeServer {
  readonly log: ScopeChangeLog;
  private readonly auth: AuthContext;
  private readonly lastSeen = new Map<string, number>();
  private readonly polling = new Map<string, number>();
  private readonly closing = new AbortController();

  constructor(private readonly opts: ScopeServerOptions) {
    this.log = new ScopeChangeLog(opts.identities, { maxDepartures: opts.maxDepartures });
    this.auth = {
      identities: opts.identities,
      hubName: opts.hubName,
      hostnames: opts.hostnames,
      ...(opts.selfKey !== undefined ? { selfKey: opts.selfKey } : {}),
      isRoot: opts.parent === undefined,
    };
  }

  /** Mounts the routes; before the front listens. */
  mount(front: HttpFront): void {
    front.route({ method: "GET", url: SCOPE_PATH, handler: (req, reply) => this.scope(req, reply) });
    front.route({ method: "POST", url: IDENTITIES_PATH, handler: (req, reply) => this.register(req, reply) });
    front.route({ method: "GET", url: CHILDREN_PATH, handler: (req, reply) => this.children(req, reply) });
    if (this.opts.store) front.route({ method: "GET", url: DEADLETTERS_PATH, handler: (req, reply) => this.deadLetters(req, reply) });
  }

  private async deadLetters(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (!this.authorise(req, reply, ["self", "owner"])) return;
    const store = this.opts.store!;
    const limit = Number((req.query as Record<string, string | undefined>).limit ?? 100);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      return void reply.code(400).send({ message: "limit must be a whole number from 1 to 10000" });
    }
    const answer: DeadLettersAnswer = {
      deadLettered: store.stats().deadLettered,
      deadLetters: (await store.deadLetters(limit)).map((d) => ({
        id: d.message.id, source: d.message.source, origin: d.message.origin, messageId: d.message.systemProperties.messageId ?? null,
        endpoint: d.endpoint, reason: d.reason, at: d.at, bytes: d.message.body.length,
      })),
    };
    return void reply.send(answer);
  }

  /** Answers every open poll (empty) and stops tracking changes. */
  close(): void {
    this.closing.abort();
    this.log.close();
  }

  private authorise(req: FastifyRequest, reply: FastifyReply, allowed: readonly Requester["kind"][]): Requester | undefined {
    const outcome = authenticate(req.headers.authorization, this.auth);
    if (!outcome.ok) {
      this.opts.logger.info({ url: req.url.split("?")[0], status: outcome.status, reason: outcome.message }, "strata route refused");
      void reply.code(outcome.status).send({ message: outcome.message });
      return undefined;
    }
    if (!allowed.includes(outcome.requester.kind)) {
      const message = `${outcome.requester.id} may not call ${req.method} ${req.url.split("?")[0]} (allowed: ${allowed.join(", ")})`;
      void reply.code(403).send({ message });
      return undefined;
    }
    return outcome.requester;
  }

  private async scope(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const requester = this.authorise(req, reply, ["child"]);
    if (!requester) return;
    const q = req.query as Record<string, string | undefined>;
    const since = Number(q.since ?? 0);
    const wait = Math.min(MAX_WAIT_SECS, Math.max(0, Number(q.wait ?? 0)));
    if (!Number.isInteger(since) || since < 0 || !Number.isFinite(wait)) {
      return void reply.code(400).send({ message: "since must be a whole number ≥ 0 (the cursor of the last answer) and wait a number of seconds" });
    }
    const child = requester.id;
    this.lastSeen.set(child, Date.now());
    this.polling.set(child, (this.polling.get(child) ?? 0) + 1);
    // A child that hangs up ends its wait at once.
    const gone = new AbortController();
    req.raw.once("close", () => gone.abort());
    reply.raw.once("close", () => gone.abort());
    const signal = AbortSignal.any([gone.signal, this.closing.signal]);
    try {
      const deadline = Date.now() + wait * 1000;
      for (;;) {
        const answer = this.log.answer(child, since, q.epoch);
        if (answer) return void reply.send(answer);
        const left = deadline - Date.now();
        if (left <= 0 || signal.aborted) break;
        await this.log.nextChange(left, signal);
      }
      return void reply.send({ epoch: this.log.epoch, cursor: since, full: false, records: [], removed: [] });
    } finally {
      this.lastSeen.set(child, Date.now());
      const n = (this.polling.get(child) ?? 1) - 1;
      if (n > 0) this.polling.set(child, n);
      else this.polling.delete(child);
    }
  }

  private async register(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const requester = this.authorise(req, reply, ["self", "child", "owner"]);
    if (!requester) return;
    const parsed = registrationSchema.safeParse(req.body);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
      return void reply.code(400).send({ message: `invalid identity record: ${problems}` });
    }
    const r = parsed.data;
    const id = registrationId(r);
    if (typeof id !== "string") return void reply.code(id.ok ? 400 : id.status).send({ message: id.ok ? "bad id" : id.message });
    const ids = this.opts.identities;
    const atRoot = this.opts.parent === undefined;
    const verdict = checkRegistration(r, id, requester, ids.self, (i) => ids.get(i), atRoot);
    if (!verdict.ok) return void reply.code(verdict.status).send({ message: verdict.message });

    if (atRoot) {
      const record = await ids.put(recordToStore(r, id, ids.get(id)));
      // A child gateway gets its runtime's module identities with it, as IoT Hub creates them for edge devices.
      const modules = await ensureEdgeModules(ids, record);
      this.opts.logger.info({ id, parent: record.parent, by: requester.id, modules: modules.map((m) => m.id) }, "identity registered");
      return void reply.code(200).send(record);
    }
    // Below the root: this hop vouches for its requester and asks its parent with its own identity.
    let res;
    try {
      res = await this.opts.parent!.request("POST", IDENTITIES_PATH, r, { timeoutMs: 15_000 });
    } catch (err) {
      const detail = err instanceof GatewayUnreachable ? err.message : String(err);
      this.opts.logger.warn({ id, parent: this.opts.parent!.target, err }, "registration not forwarded: parent unreachable");
      return void reply.code(502).send({ message: `the root is unreachable: ${detail}; child add needs the root (registrations are decided there), try again when the link is up` });
    }
    if (res.status !== 200) return void reply.code(res.status >= 400 ? res.status : 502).send({ message: errorText(res.body) });
    // Keep the answer locally at once (scope sync would bring it within a poll anyway).
    const record = res.body as import("../identity/types.js").IdentityRecord;
    try {
      if (ids.inScope(record.moduleId !== undefined ? record.deviceId : (record.parent ?? ""))) {
        await applyScopeAnswer(ids, { epoch: "", cursor: 0, full: false, records: [record], removed: [] });
      }
    } catch (err) {
      this.opts.logger.warn({ err, id }, "registered identity not cached locally; scope sync will bring it");
    }
    this.opts.logger.info({ id, parent: record.parent, by: requester.id }, "identity registered through the parent");
    return void reply.code(200).send(record);
  }

  private children(req: FastifyRequest, reply: FastifyReply): void {
    if (!this.authorise(req, reply, ["self", "owner"])) return;
    const ids = this.opts.identities;
    const all = ids.list();
    const lookup = (i: string) => ids.get(i);
    const children: ChildState[] = all
      .filter((r) => r.edge && r.moduleId === undefined && (r.parent === ids.self || (r.parent === undefined && this.auth.isRoot)))
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((r) => ({
        id: r.id,
        status: r.status,
        connected: this.opts.hub.isConnected(r.id),
        syncing: (this.polling.get(r.id) ?? 0) > 0,
        lastSeen: this.lastSeen.get(r.id) ?? null,
        subtree: subtreeOf(r.id, all, ids.self, lookup).length,
      }));
    void reply.send({ self: ids.self, children });
  }
}
