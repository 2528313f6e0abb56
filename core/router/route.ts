import type { Message } from "../message.js";
import { compileCondition, type Condition } from "./compile.js";
import { RouteParseFault, routeErrorAt } from "./errors.js";
import { MessageView } from "./message-view.js";
import { parseStatement } from "./parser.js";
import { sourceMatches, type MessageKind, type RouteSource } from "./source.js";
import type { Endpoint } from "./types.js";

/** One route, parsed and compiled: its condition is a closure, never re-parsed per message. */
export interface ParsedRoute {
  /** The route's name (`route` when parsed on its own). */
  name: string;
  text: string;
  source: RouteSource;
  /** The WHERE clause as written, or undefined when the route has none. */
  condition?: string;
  endpoint: Endpoint;
  /** Whether the message falls under the source and satisfies the condition. */
  matches(message: Message, kind?: MessageKind): boolean;
  /** The same test on a view shared between routes (RouteTable builds one per message). */
  test(view: MessageView, kind: MessageKind): boolean;
}

/**
 * Parse, type-check and compile one route statement. Throws a RouteError (STRATA_ROUTE_SYNTAX or
 * STRATA_ROUTE_TYPE) naming the route, the column and what was expected, with a caret line.
 * `strata check` uses this to validate routes without starting a hub.
 */
export function parseRoute(text: string, name = "route"): ParsedRoute {
  let source: RouteSource;
  let endpoint: Endpoint;
  let conditionText: string | undefined;
  let condition: Condition | undefined;
  try {
    const statement = parseStatement(text);
    source = statement.source;
    endpoint = statement.endpoint;
    conditionText = statement.conditionText;
    condition = statement.condition ? compileCondition(statement.condition) : undefined;
  } catch (err) {
    if (err instanceof RouteParseFault) throw routeErrorAt(err.code, name, text, err.offset, err.what);
    throw err;
  }
  const test = (view: MessageView, kind: MessageKind): boolean =>
    sourceMatches(source, kind, view.moduleId, view.message.systemProperties.outputName) && (condition === undefined || condition(view));
  return {
    name,
    text,
    source,
    condition: conditionText,
    endpoint,
    test,
    matches: (message, kind = "telemetry") => test(new MessageView(message), kind),
  };
}
