import { definePlugin, TOKENS } from "../../core/index.js";
import { blobConfigSchema } from "./config.js";
import { supportBundleCommand } from "./commands.js";
import { BlobPlugin } from "./plugin.js";

export { blobConfigSchema, CONTAINER_NAME, type BlobConfig, type UploadConfig, type AutoDeleteConfig } from "./config.js";
export { BlobPlugin, blobDataDir, accountKey, redact } from "./plugin.js";
export { BlobStore, QuotaError, type BlobMeta, type ContainerMeta, type StagedBlock } from "./store.js";
export { BlobServer, parseRange, type BlobServerStats } from "./server.js";
export { Uploader, type UploaderStats } from "./uploader.js";
export { CloudClient, CloudError, parseConnectionString, type CloudAccount } from "./cloud.js";
export { EdgeAgentMethods, type Task, type TaskStatus, type ResultSink } from "./methods.js";
export { parseTime, parseLogsRequest, selectLogs, renderLogs, PayloadError, type ModuleLogSource, type LogsRequest } from "./module-logs.js";
export { treeGateways, runTreeBundle, type TreeEntry } from "./tree-bundle.js";
export { supportBundleCommand } from "./commands.js";
export { verifySharedKey, signRequest, stringsToSign, canonicalResource, ReplayGuard } from "./shared-key.js";
export { containerNameProblem, blobNameProblem, expandTarget } from "./names.js";

/** `[plugins.blob]`: Blob Storage on IoT Edge's REST subset on the HTTPS port, uploaded to cloud storage. */
export default definePlugin({
  manifest: {
    name: "blob",
    apiVersion: "^1",
    configSchema: blobConfigSchema,
  },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: BlobPlugin });
  },
  commands: [supportBundleCommand],
});
