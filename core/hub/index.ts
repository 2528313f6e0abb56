export * from "./types.js";
export * from "./queues.js";
export { CoreHub, type HubOptions, type HubStats } from "./hub.js";
export { Drain, type DrainOptions } from "./drain.js";
export { TwinStore, mergePatch, emptyTwin } from "./twins.js";
export { accumulatePatch, diffProperties, PendingReported, type TwinDocument, type TwinParent } from "./twin-sync.js";
