// Public face of core/http: the one HTTPS listener and the bind helpers every listener shares.
export { HttpFront, peerCertificate, type HttpFrontOptions, type TlsMaterial } from "./front.js";
export { bindError, listenOn, type BoundAddress } from "./listen.js";
export type { RawHandler } from "./raw-mounts.js";
export type { WebSocketHandler } from "./websocket-router.js";
