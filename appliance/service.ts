#!/usr/bin/env node
// The appliance's service entry (strata.service, Type=notify): `strata start` plus systemd's handshake —
// READY=1 after the gateway is up, WATCHDOG=1 from the event loop, STOPPING=1 on SIGTERM.
import "reflect-metadata";
import { parseArgs } from "node:util";
import { resolveConfig } from "../core/cli/context.js";
import { isStrataError } from "../core/errors.js";
import { Gateway } from "../core/gateway.js";
import { createLogger } from "../core/log.js";
import { systemdNotifier } from "./sd-notify/index.js";

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { config: { type: "string" } } });
  const { config, source } = await resolveConfig({ config: values.config ?? "/etc/strata/strata.toml" }, { prepareEmbedded: false });
  const logger = createLogger({ level: config.log.level });
  const systemd = systemdNotifier();
  const gw = await Gateway.start({ config, logger });
  systemd.ready(`${config.device_id}: ${gw.listeners.all().map((l) => `${l.name} ${l.address}:${l.port}`).join(", ")}`);
  const stopWatchdog = systemd.startWatchdog();
  logger.info({ config: source, systemd: systemd.active }, "service ready");
  const signal = await new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  systemd.stopping();
  stopWatchdog();
  logger.info({ signal }, "stopping");
  await gw.stop();
  logger.flush();
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`${isStrataError(err) ? `error ${err.code}: ${err.message}` : String((err as Error)?.stack ?? err)}\n`);
    process.exitCode = 1;
  },
);
