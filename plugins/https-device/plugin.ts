import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  inject, injectable, isStrataError, PluginError, meterHead, TOKENS, Translator,
  type HttpFront, type Hub, type Identities, type Metrics, type Logger, type Plugin, type StrataConfig,
} from "../../core/index.js";
import type { HttpsDeviceConfig } from "./config.js";
import { httpsDeviceConverter, type HttpInput, type OutboxCommand } from "./converter.js";
import { Outbox } from "./outbox.js";

export const PLUGIN_NAME = "https-device";

type Req = FastifyRequest<{ Params: { id: string; etag?: string }; Querystring: Record<string, string | undefined> }>;

/**
 * IoT Hub's HTTPS device API on core's HTTPS listener, so azure-iot-device-http works unmodified:
 * `POST /devices/{id}/messages/events`, C2D `GET /devices/{id}/messages/deviceBound`, complete
 * `DELETE …/{etag}`, reject `DELETE …/{etag}?reject`, abandon `POST …/{etag}/abandon`; SAS in `Authorization`.
 */
@injectable()
export class HttpsDevicePlugin implements Plugin {
  private translator: Translator<HttpInput, OutboxCommand> | undefined;
  private readonly outbox = new Outbox();
  private mounted = false;

  constructor(
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.PluginConfig) private readonly config: HttpsDeviceConfig,
    @inject(TOKENS.Config) private readonly gateway: StrataConfig,
    @inject(TOKENS.Hub) private readonly hub: Hub,
    @inject(TOKENS.Identities) private readonly identities: Identities,
    @inject(TOKENS.HttpFront) private readonly front: HttpFront,
    /** Optional: per-head counters on /metrics when the gateway has a registry (not in a bare plugin test). */
    @inject(TOKENS.Metrics, { isOptional: true }) private readonly metrics?: Metrics,
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new PluginError(PLUGIN_NAME, "STRATA_TRANSLATION_START_ABORTED", "start was aborted before the routes were mounted");
    try {
      const metered = meterHead(this.metrics, PLUGIN_NAME, { hub: this.hub, identities: this.identities });
      const translator = new Translator<HttpInput, OutboxCommand>(metered.hub, metered.identities, {
        plugin: PLUGIN_NAME,
        mode: this.config.mode,
        autoCreate: this.config.auto_create,
        isRoot: this.gateway.parent === undefined,
        quotaRetryMs: this.config.quota_retry_ms,
        converters: [httpsDeviceConverter],
        transport: {
          execute: async (deviceId, cmds, s) => {
            let answer: unknown;
            for (const cmd of cmds) answer = await this.outbox.offer(deviceId, cmd.c2d, s);
            return answer;
          },
        },
        logger: this.log,
      });
      translator.start();
      this.translator = translator;
      // Routes live as long as the front; a stopped plugin answers 503 on them.
      if (!this.mounted) {
        this.mounted = true;
        this.front.register(async (app: FastifyInstance) => this.routes(app));
      }
    } catch (err) {
      await this.stop();
      if (err instanceof PluginError) throw err;
      throw new PluginError(PLUGIN_NAME, isStrataError(err) ? err.code : "STRATA_TRANSLATION_START_FAILED", (err as Error).message, { cause: err });
    }
  }

  async stop(): Promise<void> {
    this.outbox.clear();
    await this.translator?.stop();
    this.translator = undefined;
  }

  private routes(app: FastifyInstance): void {
    // Bodies are the device's bytes, whatever their content type.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: this.config.max_body_bytes }, (_req, body, done) => done(null, body));
    app.post("/devices/:id/messages/events", (req: Req, reply) => this.events(req, reply));
    for (const bound of ["deviceBound", "devicebound"]) {
      app.get(`/devices/:id/messages/${bound}`, (req: Req, reply) => this.receive(req, reply));
      app.delete(`/devices/:id/messages/${bound}/:etag`, (req: Req, reply) => this.settle(req, reply, "reject" in (req.query ?? {}) ? "reject" : "complete"));
      app.post(`/devices/:id/messages/${bound}/:etag/abandon`, (req: Req, reply) => this.settle(req, reply, "abandon"));
    }
  }

  /** The device named in the path, authenticated by its SAS token; undefined after answering 401/503. */
  private authenticate(req: Req, reply: FastifyReply): { deviceId: string; translator: Translator<HttpInput, OutboxCommand> } | undefined {
    const translator = this.translator;
    if (!translator) {
      void reply.code(503).send({ Message: "the https-device plugin is not running" });
      return undefined;
    }
    const deviceId = req.params.id;
    const token = req.headers.authorization ?? "";
    const auth = this.identities.verifySas(deviceId, token);
    if (!auth.ok) {
      this.log.debug({ device: deviceId, reason: auth.reason }, "https device refused");
      void reply.code(401).send({ Message: `unauthorized: ${auth.reason}` });
      return undefined;
    }
    return { deviceId, translator };
  }

  private async events(req: Req, reply: FastifyReply): Promise<void> {
    const who = this.authenticate(req, reply);
    if (!who) return;
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    try {
      // Resolves when durable (and holds the request while the store is over quota): then 204.
      await who.translator.receive({ body, headers: req.headers }, { deviceId: who.deviceId, address: req.ip });
      await reply.code(204).send();
    } catch (err) {
      const code = isStrataError(err) ? err.code : "STRATA_TRANSLATION_FAILED";
      const status = code === "STRATA_TRANSLATION_MALFORMED" ? 400 : code === "STRATA_TRANSLATION_STOPPED" ? 503 : code.startsWith("STRATA_TRANSLATION_") ? 403 : 500;
      if (status === 500) this.log.error({ err, device: who.deviceId }, "https device message failed");
      await reply.code(status).send({ Message: (err as Error).message, ErrorCode: code });
    }
  }

  private async receive(req: Req, reply: FastifyReply): Promise<void> {
    const who = this.authenticate(req, reply);
    if (!who) return;
    try {
      // Attaches the device's link, so the hub starts handing its C2D queue to the outbox.
      await who.translator.online(who.deviceId);
    } catch (err) {
      await reply.code(403).send({ Message: (err as Error).message });
      return;
    }
    const taken = this.outbox.take(who.deviceId, this.config.lock_timeout_secs * 1000);
    if (!taken) {
      await reply.code(204).send();
      return;
    }
    const { message, etag, deliveries } = taken;
    const sys = message.systemProperties ?? {};
    const headers: Record<string, string> = { etag: `"${etag}"`, "iothub-deliverycount": String(deliveries) };
    if (message.messageId) headers["iothub-messageid"] = message.messageId;
    if (sys.correlationId) headers["iothub-correlationid"] = sys.correlationId;
    if (sys.expiryTimeUtc) headers["iothub-expiry"] = sys.expiryTimeUtc;
    if (sys.userId) headers["iothub-userid"] = sys.userId;
    headers["iothub-to"] = sys.to ?? `/devices/${encodeURIComponent(who.deviceId)}/messages/deviceBound`;
    for (const [k, v] of Object.entries(message.properties)) headers[`iothub-app-${k}`] = v;
    if (sys.contentType) headers["content-type"] = sys.contentType;
    else headers["content-type"] = "application/octet-stream";
    await reply.code(200).headers(headers).send(message.body);
  }

  private async settle(req: Req, reply: FastifyReply, outcome: "complete" | "reject" | "abandon"): Promise<void> {
    const who = this.authenticate(req, reply);
    if (!who) return;
    const etag = (req.params.etag ?? "").replace(/^"|"$/g, "");
    if (!this.outbox.settle(who.deviceId, etag, outcome)) {
      await reply.code(412).send({ Message: `no message locked under ${etag} for ${who.deviceId} (the lock expired or was never given)`, ErrorCode: "DeviceMessageLockLost" });
      return;
    }
    await reply.code(204).send();
  }
}
