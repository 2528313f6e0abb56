import type { Message } from "../message.js";

/** A route as configured: IoT Hub's `{route, priority, timeToLiveSecs}` (a bare string is priority 0). */
export interface RouteSpec {
  name: string;
  route: string;
  priority?: number;
  timeToLiveSecs?: number;
}

/** Where a matching route sends a message: `$upstream`, `BrokeredEndpoint("/modules/m/inputs/i")`, or a sink name. */
export type Endpoint =
  | { kind: "upstream"; name: "$upstream" }
  | { kind: "module-input"; name: string; deviceId?: string; moduleId: string; input: string }
  | { kind: "sink"; name: string };

export interface RouteMatch {
  route: string;
  endpoint: Endpoint;
  priority: number;
  timeToLiveSecs?: number;
}

/** The router: compiled routes, replaced atomically when config changes. */
export interface Router {
  /** Compile and install routes; throws a StrataError naming the route and the column on a parse error. */
  setRoutes(routes: readonly RouteSpec[]): void;
  /**
   * Every endpoint the message goes to. A message whose routes name one endpoint several times goes
   * there once, with the highest priority (lowest number) and the shortest TTL of those routes.
   */
  match(message: Message, source: "telemetry" | "twinChangeNotifications"): RouteMatch[];
}
