import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AccessPolicy, Hub, Identities, Logger } from "../../../core/index.js";
import { applyConfigurationContent } from "./configuration.js";
import { errorBody, ServiceError } from "./errors.js";
import { parseJsonObject } from "./json.js";
import { c2dFromRequest, MethodService, sendC2D } from "./methods.js";
import type { DeviceRegistry } from "./registry.js";
import { TwinService } from "./twins.js";

type Right = AccessPolicy["rights"][number];

export interface ServiceApiDeps {
  identities: Identities;
  hub: Hub;
  registry: DeviceRegistry;
  logger: Logger;
  /** False while the plugin is stopped: routes cannot be removed from fastify, so they answer 503. */
  isRunning: () => boolean;
}

type Params = { id: string; mid?: string };
type Handler = (req: FastifyRequest<{ Params: Params }>, body: Buffer | undefined) => Promise<{ status: number; body?: unknown }>;

/**
 * IoT Hub's service REST API as a fastify plugin (mounted on core's HttpFront at the root). Every route
 * needs a service SAS token (`skn=` a policy, e.g. iothubowner) with the right the operation needs; a
 * device's own token is refused. `?api-version=` is accepted and not checked. Bodies are read raw (the
 * plugin's own content-type parser) so JSON errors name the field, and C2D bodies pass through untouched.
 */
export function serviceApi(deps: ServiceApiDeps) {
  const { identities, hub, registry, logger, isRunning } = deps;
  const twins = new TwinService(hub, registry);
  const methods = new MethodService(hub, registry);

  return async function serviceApiPlugin(app: FastifyInstance): Promise<void> {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
    // Failures before a handler runs (a body over the front's limit, a broken upload) in IoT Hub's shape too.
    app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      const code = status === 413 ? "MessageTooLarge" : status === 500 ? "ServerError" : "ArgumentInvalid";
      return sendError(reply, status === 500 ? err : new ServiceError(status, code, err.message), logger, req);
    });

    const json = (status: number, body?: unknown) => ({ status, body });
    const add = (method: "GET" | "PUT" | "PATCH" | "DELETE" | "POST", url: string, right: Right, handler: Handler): void => {
      app.route<{ Params: Params }>({
        method,
        url,
        handler: async (req, reply) => {
          try {
            if (!isRunning()) throw new ServiceError(503, "ServiceUnavailable", "the root plugin is stopped; start the gateway again");
            authorise(identities, req, right);
            const result = await handler(req, Buffer.isBuffer(req.body) ? req.body : undefined);
            return send(reply, result.status, result.body);
          } catch (err) {
            return sendError(reply, err, logger, req);
          }
        },
      });
    };

    // Registry: devices and modules.
    add("GET", "/devices", "RegistryRead", async () => json(200, await registry.list()));
    add("GET", "/devices/:id", "RegistryRead", async (req) => json(200, await registry.get(req.params.id)));
    add("PUT", "/devices/:id", "RegistryWrite", async (req, body) =>
      json(200, await registry.put(req.params.id, undefined, parseJsonObject(body, "device"), req.headers["if-match"])));
    add("DELETE", "/devices/:id", "RegistryWrite", async (req) => {
      await registry.remove(req.params.id, undefined, req.headers["if-match"]);
      return json(204);
    });
    add("GET", "/devices/:id/modules", "RegistryRead", async (req) => json(200, await registry.listModules(req.params.id)));
    add("GET", "/devices/:id/modules/:mid", "RegistryRead", async (req) => json(200, await registry.get(req.params.id, req.params.mid)));
    add("PUT", "/devices/:id/modules/:mid", "RegistryWrite", async (req, body) =>
      json(200, await registry.put(req.params.id, req.params.mid, parseJsonObject(body, "module"), req.headers["if-match"])));
    add("DELETE", "/devices/:id/modules/:mid", "RegistryWrite", async (req) => {
      await registry.remove(req.params.id, req.params.mid, req.headers["if-match"]);
      return json(204);
    });

    // Twins: the service writes tags and desired properties.
    for (const suffix of ["", "/modules/:mid"]) {
      add("GET", `/twins/:id${suffix}`, "RegistryRead", async (req) => json(200, await twins.get(req.params.id, req.params.mid)));
      add("PATCH", `/twins/:id${suffix}`, "ServiceConnect", async (req, body) =>
        json(200, await twins.patch(req.params.id, req.params.mid, parseJsonObject(body, "twin"), req.headers["if-match"])));
      add("PUT", `/twins/:id${suffix}`, "ServiceConnect", async (req, body) =>
        json(200, await twins.replace(req.params.id, req.params.mid, parseJsonObject(body, "twin"), req.headers["if-match"])));
      add("POST", `/twins/:id${suffix}/methods`, "ServiceConnect", async (req, body) =>
        json(200, await methods.invoke(req.params.id, req.params.mid, parseJsonObject(body, "method request"))));
    }

    // IoT Edge deployments: the manifest becomes the desired properties of the device's $edgeAgent/$edgeHub twins.
    add("POST", "/devices/:id/applyConfigurationContent", "ServiceConnect", async (req, body) => {
      await applyConfigurationContent(hub, identities, registry, req.params.id, parseJsonObject(body, "configuration content"));
      return json(200, {});
    });

    // Strata's convenience for cloud-to-device messages (the SDK's own C2D path is AMQP).
    add("POST", "/devices/:id/messages/deviceBound", "ServiceConnect", async (req, body) =>
      json(200, await sendC2D(hub, registry, req.params.id, c2dFromRequest(req.headers, body))));
  };
}

function authorise(identities: Identities, req: FastifyRequest, right: Right): void {
  const header = req.headers.authorization;
  if (!header) {
    throw new ServiceError(401, "IotHubUnauthorizedAccess",
      "no Authorization header: send a service SAS token of a shared access policy (e.g. iothubowner)");
  }
  const result = identities.verifyService(header, right);
  if (!result.ok) {
    throw new ServiceError(401, "IotHubUnauthorizedAccess", `the Authorization token was refused (${result.reason}): ${result.detail}`);
  }
}

function send(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  reply.code(status);
  if (body === undefined) return reply.send();
  return reply.header("content-type", "application/json; charset=utf-8").send(JSON.stringify(body));
}

function sendError(reply: FastifyReply, err: unknown, logger: Logger, req: FastifyRequest): FastifyReply {
  if (err instanceof ServiceError) {
    logger.debug({ status: err.status, errorCode: err.errorCode, method: req.method, url: req.url }, "service api request refused");
    return send(reply.header("iothub-errorcode", err.errorCode), err.status, errorBody(err));
  }
  logger.error({ err, method: req.method, url: req.url }, "service api request failed");
  const internal = new ServiceError(500, "ServerError", "the gateway failed to handle the request; see its log");
  return send(reply.header("iothub-errorcode", internal.errorCode), 500, errorBody(internal));
}
