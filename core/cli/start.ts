import { Gateway } from "../gateway.js";
import { deviceConnectionString, generateKey, serviceConnectionString } from "../identity/sas.js";
import { readSecret } from "../config/secret.js";
import { createLogger } from "../log.js";
import { dialHost, resolveConfig, type ConfigFlags } from "./context.js";
import type { Output } from "./output.js";

/** The sample device the embedded default creates, so a first-time user has a connection string to paste. */
export const SAMPLE_DEVICE = "device1";

/**
 * `strata start`: run the gateway until SIGINT/SIGTERM. With no config it runs the embedded default root and
 * prints what the Azure SDKs need: a device connection string, the service connection string, the CA file.
 */
export async function startCommand(flags: ConfigFlags, out: Output): Promise<number> {
  const resolved = await resolveConfig(flags, { prepareEmbedded: true });
  const { config } = resolved;
  const logger = createLogger({ level: config.log.level });
  const gw = await Gateway.start({ config, logger });

  const host = dialHost(config);
  const lines = [`strata ${gw.isRoot ? "root " : ""}gateway ${config.device_id} is running (${resolved.source})`];
  for (const l of gw.listeners.all()) lines.push(`  ${l.name.padEnd(6)} ${l.address}:${l.port}`);
  lines.push(`CA file to trust: ${config.tls.ca_file}`);
  if (resolved.embedded) {
    let device = gw.identities.get(SAMPLE_DEVICE);
    if (!device) {
      device = await gw.identities.put({
        id: SAMPLE_DEVICE, deviceId: SAMPLE_DEVICE, status: "enabled", edge: false,
        auth: { type: "sas", primaryKey: generateKey(), secondaryKey: generateKey() },
      });
    }
    if (device.auth.type === "sas") {
      const mqtt = gw.listeners.get("mqtt");
      const gatewayHost = mqtt && mqtt.port !== 8883 ? `${host}:${mqtt.port}` : host;
      lines.push(`device connection string: ${deviceConnectionString({ hub: config.hub, deviceId: SAMPLE_DEVICE, key: device.auth.primaryKey, gatewayHostName: gatewayHost })}`);
    }
  }
  if (config.service) {
    const key = readSecret(config.service.owner_key_file, "service.owner_key_file").trim();
    lines.push(`service connection string: ${serviceConnectionString({ hub: host, policy: "iothubowner", key })}`);
  }
  out.info(lines.join("\n"));

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, "stopping");
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  await gw.stop();
  logger.flush();
  return 0;
}
