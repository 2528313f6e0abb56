import type { Endpoint } from "./types.js";
import type { BinaryOp, Expr } from "./ast.js";
import { BUILTINS, BUILTIN_NAMES } from "./builtins.js";
import { RouteParseFault, ROUTE_SYNTAX } from "./errors.js";
import { Lexer, type Token } from "./lexer.js";
import { parseSource, type RouteSource } from "./source.js";

/** A route statement, parsed but not yet type-checked or compiled. */
export interface RouteStatement {
  source: RouteSource;
  /** The WHERE clause as written (trimmed), or undefined when there is none. */
  conditionText?: string;
  condition?: Expr;
  /** Offset of the condition in the route text. */
  conditionPos?: number;
  endpoint: Endpoint;
}

const KEYWORDS = new Set(["select", "from", "where", "into", "and", "or", "not"]);
const LITERALS: Record<string, boolean | null | undefined> = { true: true, false: false, null: null, undefined: undefined };
/** Sink names: an identifier (letters, digits, underscore; not starting with a digit), case-sensitive. */
const SINK_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const OPERAND = "an operand (a literal, a property, a $systemProperty, a $body path, a function call or '(')";

function fault(at: number, what: string): never {
  throw new RouteParseFault(ROUTE_SYNTAX, at, what);
}

function isWord(t: Token, word: string): boolean {
  return t.kind === "ident" && t.text.toLowerCase() === word;
}

function isOp(t: Token, ...ops: string[]): boolean {
  return t.kind === "op" && ops.includes(t.text);
}

function describe(t: Token): string {
  return t.kind === "eof" ? "the end of the route" : `'${t.text}'`;
}

/**
 * `[SELECT *] FROM <source> [WHERE <condition>] INTO <endpoint>` — IoT Hub / edgeHub route syntax, keywords
 * case-insensitive. Throws RouteParseFault with the offset of the fault.
 */
export function parseStatement(text: string): RouteStatement {
  const lx = new Lexer(text);
  let t = lx.next();
  if (isWord(t, "select")) {
    const star = lx.next();
    if (!isOp(star, "*")) fault(star.pos, `expected '*' after SELECT (only SELECT * is supported), found ${describe(star)}`);
    t = lx.next();
  }
  if (!isWord(t, "from")) fault(t.pos, `expected FROM (or SELECT * FROM), found ${describe(t)}`);
  const path = lx.readPath();
  const source = parseSource(path.text, path.pos);

  let statement: Omit<RouteStatement, "endpoint"> = { source };
  t = lx.peek();
  if (isWord(t, "where")) {
    lx.next();
    const first = lx.peek();
    if (first.kind === "eof" || isWord(first, "into")) fault(first.pos, `expected a condition after WHERE, found ${describe(first)}`);
    const condition = new ConditionParser(lx).expression();
    const end = lx.peek().pos;
    statement = { source, condition, conditionPos: first.pos, conditionText: text.slice(first.pos, end).trim() };
  }
  t = lx.next();
  if (!isWord(t, "into")) {
    const what = statement.condition ? "an operator or INTO" : "WHERE or INTO";
    fault(t.pos, `expected ${what}, found ${describe(t)}`);
  }
  const endpoint = parseEndpoint(lx);
  const end = lx.next();
  if (end.kind !== "eof") fault(end.pos, `expected the end of the route after the endpoint, found ${describe(end)}`);
  return { ...statement, endpoint };
}

function parseEndpoint(lx: Lexer): Endpoint {
  const t = lx.next();
  const expected = `$upstream, BrokeredEndpoint("/modules/{module}/inputs/{input}") or a sink name`;
  if (t.kind === "sysprop") {
    if (t.text.toLowerCase() === "upstream") return { kind: "upstream", name: "$upstream" };
    fault(t.pos, `unknown endpoint '$${t.text}': expected ${expected}`);
  }
  if (t.kind !== "ident" || KEYWORDS.has(t.text.toLowerCase())) fault(t.pos, `expected an endpoint after INTO: ${expected}`);
  if (isOp(lx.peek(), "(")) {
    if (t.text.toLowerCase() !== "brokeredendpoint") fault(t.pos, `unknown endpoint function '${t.text}': expected BrokeredEndpoint("/modules/{module}/inputs/{input}")`);
    lx.next();
    const address = lx.next();
    if (address.kind !== "string") fault(address.pos, `expected a quoted address such as "/modules/filter/inputs/input1" in BrokeredEndpoint(…)`);
    const endpoint = moduleInput(address.text, address.pos + 1);
    const close = lx.next();
    if (!isOp(close, ")")) fault(close.pos, `expected ')' after the BrokeredEndpoint address, found ${describe(close)}`);
    return endpoint;
  }
  if (!SINK_NAME.test(t.text)) fault(t.pos, `invalid sink name '${t.text}': expected letters, digits and '_' (not starting with a digit)`);
  return { kind: "sink", name: t.text };
}

/** `/modules/{m}/inputs/{i}` (a module of this gateway) or `/devices/{d}/modules/{m}/inputs/{i}`. */
function moduleInput(address: string, at: number): Endpoint {
  const parts = address.split("/");
  const ok = (s: string | undefined) => s !== undefined && s !== "";
  if (parts.length === 5 && parts[0] === "" && parts[1] === "modules" && ok(parts[2]) && parts[3] === "inputs" && ok(parts[4])) {
    const [, , moduleId, , input] = parts as [string, string, string, string, string];
    return { kind: "module-input", name: `BrokeredEndpoint("/modules/${moduleId}/inputs/${input}")`, moduleId, input };
  }
  if (parts.length === 7 && parts[0] === "" && parts[1] === "devices" && ok(parts[2]) && parts[3] === "modules" && ok(parts[4]) && parts[5] === "inputs" && ok(parts[6])) {
    const [, , deviceId, , moduleId, , input] = parts as [string, string, string, string, string, string, string];
    return { kind: "module-input", name: `BrokeredEndpoint("/devices/${deviceId}/modules/${moduleId}/inputs/${input}")`, deviceId, moduleId, input };
  }
  return fault(at, `expected a module input address "/modules/{module}/inputs/{input}" (or "/devices/{device}/modules/{module}/inputs/{input}"), found "${address}"`);
}

/**
 * Precedence, tightest first (edgeHub's Condition grammar): NOT and unary minus; * / %; + - ||;
 * < <= > >=; = != <>; AND; OR; ??. Binary operators are left-associative.
 * Note: NOT binds tighter than comparisons, so `NOT a = 'x'` is `(NOT a) = 'x'`; write NOT (a = 'x').
 */
const LEVELS: readonly (readonly string[])[] = [
  ["??"],
  ["or"],
  ["and"],
  ["=", "!=", "<>"],
  ["<", "<=", ">", ">="],
  ["+", "-", "||"],
  ["*", "/", "%"],
];

class ConditionParser {
  constructor(private readonly lx: Lexer) {}

  expression(): Expr {
    return this.binary(0);
  }

  private operatorAt(level: number): BinaryOp | undefined {
    const t = this.lx.peek();
    const ops = LEVELS[level]!;
    if (t.kind === "op" && ops.includes(t.text)) return t.text as BinaryOp;
    if (t.kind === "ident" && ops.includes(t.text.toLowerCase())) return t.text.toUpperCase() as BinaryOp;
    return undefined;
  }

  private binary(level: number): Expr {
    if (level === LEVELS.length) return this.unary();
    let left = this.binary(level + 1);
    for (let op = this.operatorAt(level); op !== undefined; op = this.operatorAt(level)) {
      const pos = this.lx.next().pos;
      const right = this.binary(level + 1);
      left = { kind: "binary", op, left, right, pos };
    }
    return left;
  }

  private unary(): Expr {
    const t = this.lx.peek();
    if (isWord(t, "not") || isOp(t, "-")) {
      this.lx.next();
      const operand = this.unary();
      return { kind: "unary", op: t.kind === "op" ? "-" : "NOT", operand, pos: t.pos };
    }
    return this.primary();
  }

  private primary(): Expr {
    const t = this.lx.next();
    switch (t.kind) {
      case "number": return { kind: "literal", value: t.number!, pos: t.pos };
      case "string": return { kind: "literal", value: t.text, pos: t.pos };
      case "prop": return { kind: "property", name: t.text, pos: t.pos };
      case "sysprop": return { kind: "system", name: t.text, pos: t.pos };
      case "body": return { kind: "body", path: t.path!, pos: t.pos };
      case "op":
        if (t.text === "(") {
          const inner = this.expression();
          const close = this.lx.next();
          if (!isOp(close, ")")) fault(close.pos, `expected ')' to close the '(' at column ${t.pos + 1}, found ${describe(close)}`);
          return inner;
        }
        return fault(t.pos, `expected ${OPERAND}, found ${describe(t)}`);
      case "ident": {
        const lower = t.text.toLowerCase();
        if (isOp(this.lx.peek(), "(")) return this.call(t);
        if (lower in LITERALS) return { kind: "literal", value: LITERALS[lower], pos: t.pos };
        if (KEYWORDS.has(lower)) fault(t.pos, `expected ${OPERAND}, found the keyword ${t.text.toUpperCase()} (write [${t.text}] for a property of that name)`);
        return { kind: "property", name: t.text, pos: t.pos };
      }
      default:
        return fault(t.pos, `expected ${OPERAND}, found ${describe(t)}`);
    }
  }

  /** A built-in call; unknown names and wrong argument counts are syntax errors (checked here, not per message). */
  private call(name: Token): Expr {
    const builtin = BUILTINS.get(name.text.toLowerCase());
    if (!builtin) fault(name.pos, `unknown function '${name.text}': expected one of ${BUILTIN_NAMES.join(", ")}`);
    this.lx.next(); // (
    const args: Expr[] = [];
    if (isOp(this.lx.peek(), ")")) {
      this.lx.next();
    } else {
      for (;;) {
        args.push(this.expression());
        const t = this.lx.next();
        if (isOp(t, ")")) break;
        if (!isOp(t, ",")) fault(t.pos, `expected ',' or ')' in the call to ${builtin.name}, found ${describe(t)}`);
      }
    }
    if (args.length < builtin.minArgs || args.length > builtin.maxArgs) {
      const want = builtin.maxArgs === Infinity ? `at least ${builtin.minArgs}`
        : builtin.minArgs === builtin.maxArgs ? `${builtin.minArgs}` : `${builtin.minArgs} or ${builtin.maxArgs}`;
      fault(name.pos, `${builtin.name} expects ${want} argument${want === "1" ? "" : "s"}, got ${args.length}`);
    }
    return { kind: "call", name: builtin.name, args, pos: name.pos };
  }
}
