// Public face of core/metrics: the Metrics service (TOKENS.Metrics), the gateway-state message that carries
// each layer's state to the root, and the running gateway's self-check.
export type { HeadMetrics, Labels, Metrics, Reading } from "./types.js";
export { MetricsRegistry } from "./metrics.js";
export { registerCoreMetrics, type CoreMetricSources } from "./core-metrics.js";
export {
  STATE_CONTENT_TYPE, STATE_KIND, STATE_PROPERTY, buildGatewayState, isStateMessage, parseGatewayState, parseStrataId,
  type CheckResult, type ClockReading, type CoreSnapshot, type GatewayState, type CheckVerdict,
} from "./state.js";
export { checkRunningGateway } from "./self-check.js";
export { meterHead, type MeteredServices } from "./head-meter.js";
export { pluginReadings } from "./plugin-readings.js";
