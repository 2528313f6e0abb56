// Public face of core/translation: the typed translation API (converters as data + pure functions), the
// Translator that gives a plugin identities, back-pressure and durability, and the conformance kit.
export * from "./types.js";
export { telemetryToInbound, decodeBody, validateConverter, recognize, isValidDeviceId, checkConverterSamples, DEVICE_ID_PROPERTY } from "./convert.js";
export { Translator, WILDCARD } from "./translator.js";
export { PROTOCOL_DESIRED_KEY } from "./self-link.js";
export { translationStats } from "./stats.js";
export { translationSettings, type TranslationSettings } from "./config.js";
export { TelemetryRecorder } from "./recorder.js";
export {
  translationConformanceSuite, checkSamples, withKitGateway, registerKitDevice, fromDevice, TRANSLATION_CONFORMANCE_CHECKS,
  type KitGateway, type TranslationDriver, type TranslationConformanceOptions,
} from "./conformance.js";
