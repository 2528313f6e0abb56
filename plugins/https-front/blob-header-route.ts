import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance, FastifyPluginCallback } from "fastify";
import { SERVICE_API_PREFIXES } from "./config.js";

/** The header every Azure Storage client sends (`@azure/storage-blob`, the .NET and C SDKs): it marks a blob request. */
export const BLOB_HEADER = "x-ms-version";

/**
 * A fastify plugin (hoisted to the root instance, so its hook also sees requests no route matches) that takes
 * requests carrying `x-ms-version` whose path nothing else on the port serves — no raw mount (those never reach
 * fastify) and no fastify route (`is404`) — and hands them to `handle` untouched, body unread. Path-style blob
 * URLs (`https://gw/<account>/…`, IoT Edge's API proxy convention) thus reach the blob plugin wherever it runs.
 * Never the service API's paths, nor `/$…` (IoT Hub's own): a header must not open a way to the root's API.
 */
export function blobHeaderRoute(isActive: () => boolean, handle: (req: IncomingMessage, res: ServerResponse) => void): FastifyPluginCallback {
  const plugin: FastifyPluginCallback = (app: FastifyInstance, _opts, done) => {
    app.addHook("onRequest", (request, reply, next) => {
      if (!request.is404 || request.headers[BLOB_HEADER] === undefined || !isActive() || reserved(request.url)) {
        next();
        return;
      }
      // The reply is ours from here: fastify neither parses the body nor answers.
      reply.hijack();
      handle(request.raw, reply.raw);
    });
    done();
  };
  // fastify-plugin's marker: the hook lives on the root instance instead of an encapsulated child.
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for("skip-override")] = true;
  return plugin;
}

function reserved(url: string): boolean {
  const path = url.split("?")[0]!;
  return path.startsWith("/$") || SERVICE_API_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`));
}

/** Storage's error body for a blob request on a gateway whose own blob plugin does not serve that path. */
export function notServedHere(req: IncomingMessage, res: ServerResponse, served: readonly string[]): void {
  const path = (req.url ?? "/").split("?")[0]!;
  const message = `${path} is not a blob path this gateway serves (its blob plugin is at ${served.join(" and ")})`;
  const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>ResourceNotFound</Code><Message>${message.replace(/[<>&]/g, " ")}</Message></Error>`;
  req.resume();
  res.writeHead(404, { "content-type": "application/xml", "content-length": Buffer.byteLength(body), "x-ms-error-code": "ResourceNotFound" });
  res.end(req.method === "HEAD" ? undefined : body);
}
