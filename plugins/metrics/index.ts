import { definePlugin, TOKENS } from "../../core/index.js";
import { traceCommand, treeCommand } from "./commands.js";
import { metricsConfigSchema } from "./config.js";
import { MetricsPlugin } from "./plugin.js";

export { metricsConfigSchema, type MetricsConfig } from "./config.js";
export { MetricsPlugin } from "./plugin.js";
export { AccessGuard, isLoopback } from "./access.js";
export { TreeStore, type TraceHop, type TraceView, type TreeNode, type TreeView } from "./tree.js";
export { renderTrace, renderTree, renderTreeCheck } from "./render.js";
export { renderStatusPage } from "./status.js";
export { CLOCK_PATH, clockVerdict, formatOffset, probeParentClock } from "./clock.js";
export { checkStates, postStates, STATES_PATH, type StatesVerdict } from "./uplink.js";
export { askRoot, traceCommand, treeCommand } from "./commands.js";

/** `[plugins.metrics]`: Prometheus metrics, the status page, and every layer's state at the root. */
export default definePlugin({
  manifest: { name: "metrics", apiVersion: "^1", configSchema: metricsConfigSchema },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: MetricsPlugin });
  },
  commands: [treeCommand, traceCommand],
});
