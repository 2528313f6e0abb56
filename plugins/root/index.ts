import { definePlugin, TOKENS } from "../../core/index.js";
import { rootConfigSchema } from "./config.js";
import { RootPlugin } from "./plugin.js";
import { telemetryTailCommand } from "./telemetry/tail-command.js";

export { rootConfigSchema, type RootConfig } from "./config.js";
export { RootPlugin, rootDataDir } from "./plugin.js";
export { telemetryTailCommand } from "./telemetry/tail-command.js";
export { TELEMETRY_SINK, TelemetryLogSink } from "./telemetry/sink.js";
export { TelemetryLogWriter } from "./telemetry/log-writer.js";
export { readLast, follow } from "./telemetry/log-reader.js";
export { toTelemetryRecord, type TelemetryRecord } from "./telemetry/record.js";

/** `[plugins.root]`: the root gateway's service REST API and telemetry log. */
export default definePlugin({
  manifest: {
    name: "root",
    apiVersion: "^1",
    configSchema: rootConfigSchema,
  },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: RootPlugin });
  },
  commands: [telemetryTailCommand],
});
