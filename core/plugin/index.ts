export * from "./api.js";
export { PluginHost, type PluginEntry, type PluginHostOptions, type PluginState, type PluginStartReport } from "./host.js";
export { checkManifest, orderPlugins } from "./manifest.js";
export { RESERVED_PLUGIN_KEYS, splitPluginSection, parsePluginConfig, type PluginSectionControls } from "./section.js";
export { loadPluginEntries, loadBuiltinPlugin, loadPackagePlugin, type LoadPluginsOptions } from "./loader.js";
export { withDeadline } from "./deadline.js";
export {
  checkPluginConformance, pluginConformanceSuite, CONFORMANCE_CHECKS,
  type ConformanceOptions, type ConformanceCheck, type ConformanceReport,
} from "./conformance.js";
