import { definePlugin, TOKENS } from "../../core/index.js";
import { agentConfigSchema } from "./config.js";
import { AgentPlugin } from "./plugin.js";

export { agentConfigSchema, type AgentConfig } from "./config.js";
export { AgentPlugin, agentDataDir } from "./plugin.js";
export { EdgeAgent, withTtl, type EdgeAgentOptions } from "./agent.js";
export { parseDeployment, needsRestart, hasDeployment, ManifestError, DEPLOYMENT_CODES, type Deployment, type ModuleSpec } from "./manifest.js";
export { ModuleSupervisor, type ModuleState, type RuntimeStatus } from "./supervisor.js";
export { ProcessRuntime, processSettings, lookupUser } from "./process-runtime.js";
export { ContainerRuntime, rewriteImage, containerCreateBody, demuxLogs, CONTAINER_WORKLOAD_SOCKET } from "./container-runtime.js";
export { WorkloadApi, WORKLOAD_API_VERSION } from "./workload.js";
export type { ModuleRuntime, RunningModule, StartContext, ExitInfo } from "./runtime.js";

/** `[plugins.agent]`: deployment manifests, module runtimes (process, container) and the workload API. */
export default definePlugin({
  manifest: {
    name: "agent",
    apiVersion: "^1",
    configSchema: agentConfigSchema,
  },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: AgentPlugin });
  },
});
