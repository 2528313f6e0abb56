import type { InjectionToken } from "tsyringe";

/**
 * Container tokens: the only way plugins meet core services and each other. `Symbol.for` so that two
 * installed copies of core (a third-party plugin's peer dependency resolved twice) still agree.
 * The types behind each token are exported from core/index.ts.
 */
export const TOKENS = {
  Logger: Symbol.for("strata.Logger") as InjectionToken<unknown>,
  Config: Symbol.for("strata.Config") as InjectionToken<unknown>,
  PluginConfig: Symbol.for("strata.PluginConfig") as InjectionToken<unknown>,
  Plugin: Symbol.for("strata.Plugin") as InjectionToken<unknown>,
  Hub: Symbol.for("strata.Hub") as InjectionToken<unknown>,
  Identities: Symbol.for("strata.Identities") as InjectionToken<unknown>,
  Store: Symbol.for("strata.Store") as InjectionToken<unknown>,
  Router: Symbol.for("strata.Router") as InjectionToken<unknown>,
  Pki: Symbol.for("strata.Pki") as InjectionToken<unknown>,
  Metrics: Symbol.for("strata.Metrics") as InjectionToken<unknown>,
  HttpFront: Symbol.for("strata.HttpFront") as InjectionToken<unknown>,
  /** Bound addresses of every listener (core/listeners.ts): heads report theirs after they bind. */
  Listeners: Symbol.for("strata.Listeners") as InjectionToken<unknown>,
  /** The child's link to its parent (core/upstream): its state for `strata child list` / `strata check`. Absent on the root. */
  Upstream: Symbol.for("strata.Upstream") as InjectionToken<unknown>,
} as const;
export type TokenName = keyof typeof TOKENS;
