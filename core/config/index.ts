// Public face of core/config: the TOML config file, its types, secrets and the embedded default.
export {
  strataConfigSchema, logLevelSchema,
  type StrataConfig, type StrataConfigInput, type IdentityConfig, type ParentConfig, type TlsConfig,
  type ListenConfig, type StoreConfig, type RouteConfig, type ServiceConfig, type LogConfig,
} from "./schema.js";
export { DEFAULT_CONFIG_PATH, loadConfig, parseConfig, validateConfig, type ParseConfigOptions } from "./load.js";
export { readSecret } from "./secret.js";
export { embeddedDefaultConfig } from "./defaults.js";
export { describeIssues as describeZodIssues, keyPath as formatKeyPath } from "./issues.js";
