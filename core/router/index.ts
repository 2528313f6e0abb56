// Public face of core/router: IoT Hub / edgeHub route syntax, compiled to closures.
export type { Endpoint, RouteMatch, RouteSpec, Router } from "./types.js";
export { RouteTable } from "./route-table.js";
export { parseRoute, type ParsedRoute } from "./route.js";
export { RouteError } from "./errors.js";
export { formatSource, type MessageKind, type RouteSource } from "./source.js";
