import type { FastifyReply, FastifyRequest } from "fastify";
import {
  buildGatewayState, checkRunningGateway, inject, injectable, isStateMessage, parseGatewayState, parseStrataId,
  pluginReadings, PluginError, readSecret, TOKENS,
  type CheckResult, type ClockReading, type GatewayState, type Hub, type HttpFront, type Identities, type IngestResult, type Logger,
  type Message, type Metrics, type Plugin, type Principal, type Store, type StrataConfig,
} from "../../core/index.js";
import { AccessGuard } from "./access.js";
import { CLOCK_PATH, probeParentClock } from "./clock.js";
import { checkStates, postStates, STATES_PATH } from "./uplink.js";
import type { MetricsConfig } from "./config.js";
import { renderStatusPage } from "./status.js";
import { TreeStore } from "./tree.js";

export const PLUGIN_NAME = "metrics";
/** The root remembers this many recent arrivals for `strata trace` (a Map entry each: cheap). */
const ROOT_ARRIVALS = 10_000;


/**
 * `/metrics` (Prometheus text), `/status` (HTML) and the tree API on the HTTPS front; every gateway sends its
 * state (and the newest of its subtree's) to its parent's front each report interval, signed with its own
 * identity (uplink.ts), and the root keeps every layer's newest state for `strata tree`, `strata trace` and
 * `strata check --tree`.
 */
@injectable()
export class MetricsPlugin implements Plugin {
  private mounted = false;
  private running = false;
  private guard: AccessGuard | undefined;
  private tree: TreeStore | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private restoreForward: (() => void) | undefined;
  private checks: { at: number; lines: CheckResult[] } | undefined;
  /** This gateway's clock against its parent's, measured with each check run. */
  private clock: ClockReading | undefined;
  private previous: { at: number; acked: number } | undefined;
  /** Trace watermarks: highest sequence accepted here per origin gateway. */
  private readonly accepted = new Map<string, number>();
  /** Root only: Strata id → when it arrived, the newest ROOT_ARRIVALS. */
  private readonly arrivals = new Map<string, number>();
  private reporting: Promise<void> | undefined;
  /** A middle hop: the newest state of each gateway below it not yet sent up. */
  private readonly relay = new Map<string, GatewayState>();

  constructor(
    @inject(TOKENS.Hub) private readonly hub: Hub,
    @inject(TOKENS.Store) private readonly store: Store,
    @inject(TOKENS.Identities) private readonly identities: Identities,
    @inject(TOKENS.HttpFront) private readonly front: HttpFront,
    @inject(TOKENS.Metrics) private readonly metrics: Metrics,
    @inject(TOKENS.Config) private readonly config: StrataConfig,
    @inject(TOKENS.PluginConfig) private readonly settings: MetricsConfig,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {}

  private get isRoot(): boolean {
    return this.config.parent === undefined;
  }

  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    try {
      const bearer = this.settings.access === "token" ? Buffer.from(readSecret(this.settings.token_file!, "plugins.metrics.token_file").trim()) : undefined;
      this.guard = new AccessGuard(this.settings.access, this.identities, bearer);
      if (this.isRoot) {
        this.tree = new TreeStore(this.store.kv("metrics-tree"), this.log);
        await this.tree.load();
      }
      signal.throwIfAborted();
      this.mount();
      pluginReadings<ClockReading | undefined>(this.metrics, "metrics-clock", (read) => {
        this.metrics.gaugeFn("strata_parent_clock_offset_seconds", "This gateway's clock minus its parent's (positive: ahead), newest probe", [], () => (read()?.offsetMs ?? Number.NaN) / 1000);
      })(() => this.clock);
      this.interceptForward();
      this.running = true;
      this.reportTimer = setInterval(() => this.report(), this.settings.report_interval_secs * 1000);
      this.checkTimer = setInterval(() => void this.runCheck(), this.settings.check_interval_secs * 1000);
      // The first check, then the first report, without holding up the gateway's start.
      void this.runCheck().then(() => this.report());
      this.log.info({ access: this.settings.access, reportIntervalSecs: this.settings.report_interval_secs, root: this.isRoot }, "metrics ready");
    } catch (err) {
      await this.stop();
      if (err instanceof PluginError) throw err;
      throw new PluginError(PLUGIN_NAME, "STRATA_METRICS_START_FAILED", `could not start: ${(err as Error).message}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.reportTimer);
    clearInterval(this.checkTimer);
    this.reportTimer = this.checkTimer = undefined;
    this.restoreForward?.();
    this.restoreForward = undefined;
    await this.reporting;
  }

  /** This gateway's state now (the root's own row, and what a child sends up). */
  state(): GatewayState | undefined {
    const core = this.metrics.core();
    if (!core) return undefined;
    return buildGatewayState(core, {
      accepted: Object.fromEntries(this.accepted),
      ...(this.checks ? { checks: this.checks } : {}),
      ...(this.clock ? { clock: this.clock } : {}),
      ...(this.previous ? { previous: this.previous } : {}),
    });
  }

  /** Sends (a child) or records (the root) this gateway's state; one at a time. */
  report(): Promise<void> {
    if (!this.running || this.reporting) return this.reporting ?? Promise.resolve();
    this.reporting = this.sendState().catch((err: unknown) => this.log.warn({ err }, "gateway state not sent")).finally(() => { this.reporting = undefined; });
    return this.reporting;
  }

  private async sendState(): Promise<void> {
    const state = this.state();
    if (!state) return;
    const core = this.metrics.core()!;
    this.previous = { at: state.at, acked: core.store.acked };
    if (this.isRoot) return; // the root's row is built when asked
    // Its own state and the newest of each gateway below that reported since (see uplink.ts for why not
    // the telemetry queue); what fails to go stays for the next report, newest only.
    const relayed = [...this.relay.values()];
    await postStates(this.config, [state, ...relayed]);
    for (const s of relayed) if (this.relay.get(s.device) === s) this.relay.delete(s.device);
  }

  /** A child's POST of its subtree's states: kept (the root) or relayed with the next report (a middle hop). */
  private async takeStates(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    if (!this.running) return reply.code(503).send({ message: "metrics plugin is stopped" });
    const verdict = checkStates(this.identities, (req.query as { device?: string }).device, req.headers.authorization, req.body);
    if (!verdict.ok) return reply.code(verdict.status).send({ message: verdict.reason });
    const now = Date.now();
    for (const state of verdict.states) {
      if (this.tree) await this.tree.accept(state, now);
      else if ((this.relay.get(state.device)?.at ?? -1) < state.at) this.relay.set(state.device, state);
    }
    return reply.code(204).send();
  }

  private async runCheck(): Promise<void> {
    try {
      const [lines, clock] = await Promise.all([
        checkRunningGateway(this.config, this.metrics.core()?.listeners ?? []),
        probeParentClock(this.config).catch((err: unknown) => { this.log.debug({ err }, "parent clock probe failed"); return undefined; }),
      ]);
      this.checks = { at: Date.now(), lines };
      if (clock) this.clock = clock;
    } catch (err) {
      this.log.warn({ err }, "self check failed to run");
    }
  }

  /**
   * Every message forwarded from a child passes here: trace watermarks are bumped, and a gateway state that
   * still comes as telemetry on the reserved route (a child of an earlier version) is taken like a POSTed one.
   */
  private interceptForward(): void {
    if (this.restoreForward) return;
    this.restoreForward = this.hub.addForwardHandler({
      take: (principal, message) =>
        isStateMessage(message) && message.source === principal.id && this.identities.get(principal.id)?.edge
          ? this.takeState(principal, message)
          : undefined,
      accepted: (message) => this.noteAccepted(message.id),
    });
  }

  private async takeState(principal: Principal, message: Message): Promise<IngestResult> {
    const state = parseGatewayState(message.body);
    if (!state || state.device !== principal.id) {
      this.log.warn({ source: principal.id, messageId: message.id }, "malformed gateway state dropped");
    } else if (this.tree) {
      await this.tree.accept(state, Date.now());
    } else if ((this.relay.get(state.device)?.at ?? -1) < state.at) {
      this.relay.set(state.device, state);
    }
    return { id: message.id, duplicate: false, endpoints: [] };
  }

  private noteAccepted(id: string): void {
    const parsed = parseStrataId(id);
    if (!parsed) return;
    if ((this.accepted.get(parsed.origin) ?? -1) < parsed.seq) this.accepted.set(parsed.origin, parsed.seq);
    if (!this.tree) return;
    this.arrivals.set(id, Date.now());
    if (this.arrivals.size > ROOT_ARRIVALS) this.arrivals.delete(this.arrivals.keys().next().value!);
  }

  // ---- HTTP ----------------------------------------------------------------------------------------------

  /** Routes stay mounted for the life of the listener (fastify cannot remove them); stopped, they answer 503. */
  private mount(): void {
    if (this.mounted) return;
    this.mounted = true;
    // Children measure their clock against this one (clock.ts); no credentials: a clock is no secret.
    this.front.route({ method: "GET", url: CLOCK_PATH, handler: (_req, reply) =>
      this.running ? reply.header("cache-control", "no-store").send({ now: Date.now() }) : reply.code(503).send({ message: "metrics plugin is stopped" }) });
    // Children's states (uplink.ts): authenticated by the child's own SAS token, not by `access`.
    this.front.route({ method: "POST", url: STATES_PATH, handler: (req, reply) => this.takeStates(req, reply) });
    this.front.route({ method: "GET", url: "/metrics", handler: (req, reply) => this.guarded(req, reply, async () => {
      const text = await this.metrics.text();
      return reply.header("content-type", this.metrics.contentType).send(text);
    }) });
    this.front.route({ method: "GET", url: "/$strata/metrics/tree", handler: (req, reply) => this.guarded(req, reply, async () => reply.send(this.treeView())) });
    this.front.route({ method: "GET", url: "/$strata/metrics/state", handler: (req, reply) => this.guarded(req, reply, async () => reply.send(this.state())) });
    this.front.route({ method: "GET", url: "/$strata/metrics/trace/:id", handler: (req, reply) => this.guarded(req, reply, async () => {
      const { id } = req.params as { id: string };
      const self = this.state()!;
      const tree = this.tree ?? new TreeStore(this.store.kv("metrics-tree"), this.log);
      return reply.send(tree.trace(id, this.identities, self, this.arrivals.get(id)));
    }) });
    this.front.route({ method: "GET", url: "/status", handler: (req, reply) => this.guarded(req, reply, async () =>
      reply.header("content-type", "text/html; charset=utf-8").header("cache-control", "no-store").send(renderStatusPage(this.treeView()))) });
  }

  /** The tree (the root) or just this gateway (a child: it only knows itself). */
  treeView() {
    const self = this.state()!;
    if (this.tree) return this.tree.view(this.identities, self, Date.now());
    return { root: this.config.device_id, now: Date.now(), nodes: [{ device: this.config.device_id, depth: 0, children: 0, state: self, seenAt: self.at }] };
  }

  private async guarded(req: FastifyRequest, reply: FastifyReply, answer: () => Promise<FastifyReply>): Promise<FastifyReply> {
    if (!this.running || !this.guard) return reply.code(503).send({ message: "metrics plugin is stopped" });
    const decision = this.guard.check(req.raw);
    if (!decision.ok) return reply.code(decision.status).send({ message: decision.reason });
    return answer();
  }
}

