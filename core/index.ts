/**
 * Core's public face: the only module plugins import. Everything a plugin may use is re-exported here;
 * anything not exported is internal and may change without notice.
 */
import "./quiet-debug.js";
import "reflect-metadata";

export { inject, injectable, type DependencyContainer } from "tsyringe";
export * from "./tokens.js";
export * from "./errors.js";
export * from "./log.js";
export * from "./message.js";
export * from "./message-record.js";
export * from "./listeners.js";
export { coalesceWrites } from "./coalesce-writes.js";
export * from "./plugin/index.js";
export * from "./config/index.js";
export * from "./http/index.js";
export * from "./pki/index.js";
export * from "./identity/index.js";
export * from "./store/index.js";
export * from "./router/index.js";
export * from "./hub/index.js";
export * from "./gateway.js";
export * from "./translation/index.js";
export * from "./scope/index.js";
export * from "./metrics/index.js";
export * from "./upstream/index.js";
export * from "./provision/index.js";
export { runChecks, type CheckLine, type Verdict as CheckLineVerdict } from "./cli/check.js";
