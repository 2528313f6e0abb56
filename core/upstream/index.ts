// Public face of core/upstream: the child side of the gateway-to-gateway link.
export { UpstreamLink, type UpstreamLinkOptions } from "./link.js";
export type { Upstream, UpstreamState, UpstreamStatus, UpstreamTransport } from "./types.js";
export {
  AUTH_CHAIN_PROPERTY, OUTPUT_NAME_PROPERTY, STRATA_ANNOTATIONS, bodyBytes, eventsAddress, fromAmqpMessage, parseJsonBody, toAmqpMessage, type AmqpMessage,
} from "./convert.js";
export { IDENTITY_REFUSED_CONDITIONS, PERMANENT_CONDITIONS, REFUSAL_ATTEMPTS, outcomeForRefusal } from "./refusals.js";
export { upstreamFromConfig } from "./from-config.js";
export { BATCH_CAPABILITY, BATCH_FORMAT, MIXED_BATCH_CAPABILITY, RECORD_BATCH_CAPABILITY, decodeBatch, encodeBatch, encodeRecordBatch, type DecodedBatch } from "./batch.js";
export { patchRheaBuffers, patchRheaDispositions } from "./rhea-dispositions.js";
