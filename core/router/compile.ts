import type { BinaryOp, Expr } from "./ast.js";
import { BUILTINS } from "./builtins.js";
import { RouteParseFault, ROUTE_TYPE } from "./errors.js";
import { bodyPath, systemReader, type MessageView } from "./message-view.js";
import { and, equals, not, num, or, order, typeOf, type StaticType, type Value } from "./values.js";

/** A compiled expression: a closure over the message view, and what is known of its type up front. */
export interface Compiled {
  type: StaticType;
  run: (view: MessageView) => Value;
}

/** A compiled WHERE clause: true only when the condition is exactly true (false, null, Undefined do not match). */
export type Condition = (view: MessageView) => boolean;

function typeFault(at: number, what: string): never {
  throw new RouteParseFault(ROUTE_TYPE, at, what);
}

const article = (t: StaticType) => (t === "undefined" ? "undefined" : t === "null" ? "null" : t === "any" ? "a value" : `a ${t === "bool" ? "boolean" : t}`);

/** Types that fit where `want` is expected: null, undefined and unknown (`any`) fit everywhere, as in edgeHub. */
function fits(given: StaticType, want: StaticType): boolean {
  return want === "any" || given === want || given === "any" || given === "null" || given === "undefined";
}

/** Two operand types that may meet in = != < … ??: the same, or at least one not known up front. */
function comparable(a: StaticType, b: StaticType): boolean {
  return a === b || [a, b].some((t) => t === "any" || t === "null" || t === "undefined");
}

const hint = (e: Expr) => (e.kind === "property" ? ` (application properties are strings: convert with as_number(${e.name}))` : "");

export function compileCondition(expr: Expr): Condition {
  const c = compile(expr);
  if (!fits(c.type, "bool")) typeFault(expr.pos, `the condition must be true or false, but it is ${article(c.type)}`);
  const run = c.run;
  return (view) => run(view) === true;
}

export function compile(e: Expr): Compiled {
  switch (e.kind) {
    case "literal": {
      const value = e.value;
      return { type: typeOf(value), run: () => value };
    }
    case "property": {
      const name = e.name;
      return {
        type: "string",
        run: (v) => (Object.hasOwn(v.message.properties, name) ? v.message.properties[name] : undefined),
      };
    }
    case "system": {
      const read = systemReader(e.name);
      return { type: "string", run: read };
    }
    case "body": {
      const path = e.path;
      return { type: "any", run: (v) => bodyPath(v.body(), path) };
    }
    case "unary":
      return unary(e.op, e.operand, e.pos);
    case "binary":
      return binary(e.op, e.left, e.right, e.pos);
    case "call":
      return call(e.name, e.args, e.pos);
  }
}

function unary(op: "NOT" | "-", operand: Expr, pos: number): Compiled {
  const x = compile(operand);
  const run = x.run;
  if (op === "NOT") {
    if (!fits(x.type, "bool")) typeFault(pos, `NOT needs a boolean, got ${article(x.type)}${operand.kind === "property" ? "; for NOT a = b write NOT (a = b)" : ""}`);
    return { type: "bool", run: (v) => not(run(v)) };
  }
  if (!fits(x.type, "number")) typeFault(pos, `unary '-' needs a number, got ${article(x.type)}${hint(operand)}`);
  return { type: "number", run: (v) => { const a = run(v); return typeof a === "number" ? num(-a) : undefined; } };
}

const ARITHMETIC: Partial<Record<BinaryOp, (a: number, b: number) => number>> = {
  "+": (a, b) => a + b,
  "-": (a, b) => a - b,
  "*": (a, b) => a * b,
  "/": (a, b) => a / b,
  "%": (a, b) => a % b,
};

function binary(op: BinaryOp, leftExpr: Expr, rightExpr: Expr, pos: number): Compiled {
  const l = compile(leftExpr);
  const r = compile(rightExpr);
  const left = l.run;
  const right = r.run;
  const sides = `${article(l.type)} and ${article(r.type)}`;

  const arithmetic = ARITHMETIC[op];
  if (arithmetic) {
    for (const [side, c, e] of [["left", l, leftExpr], ["right", r, rightExpr]] as const) {
      if (!fits(c.type, "number")) {
        const alt = op === "+" && c.type === "string" ? "; join strings with ||" : "";
        typeFault(pos, `'${op}' needs numbers, got ${article(c.type)} on the ${side}${hint(e)}${alt}`);
      }
    }
    return {
      type: "number",
      run: (v) => {
        const a = left(v);
        if (typeof a !== "number") return undefined;
        const b = right(v);
        return typeof b === "number" ? num(arithmetic(a, b)) : undefined;
      },
    };
  }

  switch (op) {
    case "||":
      for (const [side, c] of [["left", l], ["right", r]] as const) {
        if (!fits(c.type, "string")) typeFault(pos, `'||' joins strings, got ${article(c.type)} on the ${side}`);
      }
      return {
        type: "string",
        run: (v) => { const a = left(v); const b = right(v); return typeof a === "string" && typeof b === "string" ? a + b : undefined; },
      };
    case "=": case "!=": case "<>": {
      if (!comparable(l.type, r.type)) typeFault(pos, `'${op}' compares values of one type, got ${sides}${hint(leftExpr) || hint(rightExpr)}`);
      const eq = op === "=" ? "=" : "!=";
      return { type: "bool", run: (v) => equals(eq, left(v), right(v)) };
    }
    case "<": case "<=": case ">": case ">=": {
      if (!comparable(l.type, r.type)) typeFault(pos, `'${op}' compares two numbers or two strings, got ${sides}${hint(leftExpr) || hint(rightExpr)}`);
      if (l.type === "bool" || r.type === "bool") typeFault(pos, `'${op}' compares two numbers or two strings, got ${sides}`);
      return { type: "bool", run: (v) => order(op, left(v), right(v)) };
    }
    case "AND": case "OR": {
      for (const [side, c] of [["left", l], ["right", r]] as const) {
        if (!fits(c.type, "bool")) typeFault(pos, `${op} needs booleans, got ${article(c.type)} on the ${side}`);
      }
      return op === "AND"
        ? { type: "bool", run: (v) => and(left(v), () => right(v)) }
        : { type: "bool", run: (v) => or(left(v), () => right(v)) };
    }
    case "??": {
      if (!comparable(l.type, r.type)) typeFault(pos, `'??' needs both sides of one type, got ${sides}${hint(leftExpr) || hint(rightExpr)}`);
      const type: StaticType = l.type === r.type ? l.type : l.type === "undefined" ? r.type : "any";
      return { type, run: (v) => { const a = left(v); return a !== undefined ? a : right(v); } };
    }
    default:
      throw new Error(`unhandled operator ${op}`);
  }
}

function call(name: string, argExprs: readonly Expr[], pos: number): Compiled {
  const builtin = BUILTINS.get(name)!;
  const args = argExprs.map(compile);
  args.forEach((a, i) => {
    const want = builtin.params[Math.min(i, builtin.params.length - 1)]!;
    if (!fits(a.type, want)) typeFault(argExprs[i]!.pos, `${name} expects ${article(want)} as argument ${i + 1}, got ${article(a.type)}${want === "number" ? hint(argExprs[i]!) : ""}`);
  });
  const runs = args.map((a) => a.run);
  const fn = builtin.fn;
  return { type: builtin.returns, run: (v) => fn(runs.map((run) => run(v))) };
}
