import { StrataAggregateError } from "../errors.js";
import type { Message } from "../message.js";
import { RouteError, ROUTE_CONFIG } from "./errors.js";
import { MessageView } from "./message-view.js";
import { parseRoute, type ParsedRoute } from "./route.js";
import type { MessageKind } from "./source.js";
import type { Endpoint, RouteMatch, RouteSpec, Router } from "./types.js";

interface InstalledRoute {
  parsed: ParsedRoute;
  priority: number;
  timeToLiveSecs?: number;
}

function configError(route: string, what: string): RouteError {
  return new RouteError(ROUTE_CONFIG, route, `route "${route}": ${what}`);
}

/** Check priority and TTL as IoT Hub's route objects define them, then compile the statement. */
function install(spec: RouteSpec): InstalledRoute {
  const name = spec.name;
  const priority = spec.priority ?? 0;
  if (!Number.isInteger(priority) || priority < 0 || priority > 9) {
    throw configError(name, `priority must be an integer from 0 (highest) to 9, got ${String(spec.priority)}`);
  }
  const ttl = spec.timeToLiveSecs;
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl <= 0)) {
    throw configError(name, `timeToLiveSecs must be a positive whole number of seconds, got ${String(ttl)}; omit it for the store's default`);
  }
  if (typeof spec.route !== "string" || spec.route.trim() === "") {
    throw configError(name, `route must be a statement such as "FROM /messages/* INTO $upstream"`);
  }
  return { parsed: parseRoute(spec.route, name), priority, timeToLiveSecs: ttl };
}

/**
 * The router: compiled routes, swapped atomically. `setRoutes` compiles every route before installing any,
 * so a bad route leaves the previous table in place (and the error names every bad route).
 */
export class RouteTable implements Router {
  private routes: readonly InstalledRoute[] = [];

  setRoutes(specs: readonly RouteSpec[]): void {
    const errors: Error[] = [];
    const installed: InstalledRoute[] = [];
    const names = new Set<string>();
    for (const spec of specs) {
      try {
        if (typeof spec.name !== "string" || spec.name === "") throw configError(String(spec.name), "every route needs a non-empty name");
        if (names.has(spec.name)) throw configError(spec.name, "the name is used by another route; route names must be unique");
        names.add(spec.name);
        installed.push(install(spec));
      } catch (err) {
        errors.push(err as Error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      const first = errors[0] as RouteError;
      throw new StrataAggregateError(first.code, `${errors.length} routes are invalid`, errors);
    }
    this.routes = installed; // one assignment: match() sees the old table or the new one, never a mix
  }

  match(message: Message, source: MessageKind): RouteMatch[] {
    const routes = this.routes;
    const view = new MessageView(message);
    const byEndpoint = new Map<string, RouteMatch>();
    for (const r of routes) {
      if (!r.parsed.test(view, source)) continue;
      const endpoint = r.parsed.endpoint;
      const seen = byEndpoint.get(endpoint.name);
      if (!seen) {
        byEndpoint.set(endpoint.name, { route: r.parsed.name, endpoint, priority: r.priority, timeToLiveSecs: r.timeToLiveSecs });
        continue;
      }
      // One delivery per endpoint: the highest priority (lowest number) and the shortest explicit TTL.
      if (r.priority < seen.priority) {
        seen.priority = r.priority;
        seen.route = r.parsed.name;
      }
      if (r.timeToLiveSecs !== undefined && (seen.timeToLiveSecs === undefined || r.timeToLiveSecs < seen.timeToLiveSecs)) {
        seen.timeToLiveSecs = r.timeToLiveSecs;
      }
    }
    // Stable sort: equal priorities keep route order.
    return [...byEndpoint.values()].sort((a, b) => a.priority - b.priority);
  }

  /** Every distinct endpoint the installed routes name: the hub checks sinks exist and opens queues for them. */
  endpoints(): Endpoint[] {
    const byName = new Map<string, Endpoint>();
    for (const r of this.routes) byName.set(r.parsed.endpoint.name, r.parsed.endpoint);
    return [...byName.values()];
  }

  /** The installed routes, in order. */
  list(): readonly ParsedRoute[] {
    return this.routes.map((r) => r.parsed);
  }
}
