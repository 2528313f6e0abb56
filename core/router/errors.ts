import { StrataError } from "../errors.js";

/**
 * A route that cannot be compiled. `route` is the route's name; `column` is 1-based within `line`
 * (routes are usually one line; a multi-line route counts lines from 1).
 */
export class RouteError extends StrataError {
  readonly route: string;
  readonly line?: number;
  readonly column?: number;
  constructor(code: string, route: string, message: string, where?: { line: number; column: number }) {
    super(code, message);
    this.name = "RouteError";
    this.route = route;
    this.line = where?.line;
    this.column = where?.column;
  }
}

/** Line and 1-based column of a 0-based offset into the route text. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number; lineText: string } {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const lineStart = before.lastIndexOf("\n") + 1;
  const lineEnd = text.indexOf("\n", lineStart);
  const lineText = text.slice(lineStart, lineEnd < 0 ? text.length : lineEnd);
  return { line, column: offset - lineStart + 1, lineText };
}

/**
 * An error pointing into the route text: names the route and the column, says what was expected, and
 * repeats the line with a caret under the fault so `strata check` output is readable at a glance.
 */
export function routeErrorAt(code: string, route: string, text: string, offset: number, what: string): RouteError {
  const { line, column, lineText } = lineAndColumn(text, offset);
  const where = text.includes("\n") ? `line ${line}, column ${column}` : `column ${column}`;
  const caret = `${" ".repeat(Math.max(0, column - 1))}^`;
  return new RouteError(code, route, `route "${route}": ${what} at ${where}\n  ${lineText}\n  ${caret}`, { line, column });
}

/** Thrown while parsing: the parser does not know the route's name, the caller adds it. */
export class RouteParseFault extends Error {
  constructor(readonly code: string, readonly offset: number, readonly what: string) {
    super(what);
    this.name = "RouteParseFault";
  }
}

export const ROUTE_SYNTAX = "STRATA_ROUTE_SYNTAX";
export const ROUTE_TYPE = "STRATA_ROUTE_TYPE";
export const ROUTE_CONFIG = "STRATA_ROUTE_CONFIG";
