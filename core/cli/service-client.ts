import { readFileSync } from "node:fs";
import https from "node:https";
import type { StrataConfig } from "../config/schema.js";
import { readSecret } from "../config/secret.js";
import { StrataError } from "../errors.js";
import { signSas } from "../identity/sas.js";

export interface ServiceApi {
  /** JSON in, JSON out; a status in `tolerate` resolves undefined instead of throwing. */
  request(method: string, path: string, body?: unknown, tolerate?: readonly number[], headers?: Record<string, string>): Promise<unknown>;
}

/**
 * A client of the local root's service API (IoT Hub's REST shape), authenticated with the owner key the way
 * azure-iothub authenticates: an `iothubowner` SAS token for the hub name.
 */
export function serviceApi(config: StrataConfig): ServiceApi {
  if (!config.service) throw new StrataError("STRATA_CLI_NOT_ROOT", "this gateway has no [service] section: the service API runs on the root");
  const key = readSecret(config.service.owner_key_file, "service.owner_key_file").trim();
  const ca = readFileSync(config.tls.ca_file, "utf8");
  return {
    request(method, path, body, tolerate = [], headers = {}) {
      const token = signSas({ resource: config.hub, key, keyName: "iothubowner", expirySecs: Math.floor(Date.now() / 1000) + 300 });
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      return new Promise((resolve, reject) => {
        const req = https.request({
          host: config.listen.address, port: config.listen.https, method, ca, servername: config.hostname,
          path: `${path}${path.includes("?") ? "&" : "?"}api-version=2021-04-12`,
          headers: { Authorization: token, ...(payload ? { "Content-Type": "application/json", "Content-Length": payload.length } : {}), ...headers },
        }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve(text ? JSON.parse(text) : undefined);
            if (tolerate.includes(status)) return resolve(undefined);
            reject(new StrataError("STRATA_CLI_SERVICE_API", `${method} ${path} answered ${status}: ${text.slice(0, 500)}`));
          });
        });
        req.on("error", (cause) => reject(new StrataError("STRATA_CLI_SERVICE_API", `cannot reach the root's service API at https://${config.listen.address}:${config.listen.https}: ${cause.message}`, { cause })));
        req.end(payload);
      });
    },
  };
}
