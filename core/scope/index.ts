// Public face of core/scope: scope sync between parent and child gateways, registration forwarding, and the
// client the CLI uses for `strata child …`.
export * from "./types.js";
export { authenticate, type AuthContext, type AuthOutcome, type Requester } from "./auth.js";
export { ScopeChangeLog, type IdentitySource, type ScopeChangeLogOptions } from "./change-log.js";
export { GatewayClient, GatewayUnreachable, deviceTokenSigner, ownerTokenSigner, errorText, type GatewayClientOptions, type GatewayResponse } from "./https-client.js";
export { registrationSchema, checkRegistration, recordToStore, registrationId, type Registration, type Verdict } from "./registration.js";
export { ScopeServer, MAX_WAIT_SECS, type ScopeServerOptions } from "./server.js";
export { ScopeService, parentClient, type ScopeServiceOptions } from "./service.js";
export { subtreeOf, isWithin, ancestorsOf, type Lookup } from "./subtree.js";
export { ScopeSync, applyScopeAnswer, sameRecord, backoff, clockOffset, CLOCK_WARN_MS, type ScopeSyncOptions, type ScopeSyncState, type SyncCursor } from "./sync.js";
