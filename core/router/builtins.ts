import { num, type StaticType, type Value } from "./values.js";

/**
 * IoT Hub's built-in functions. Every function returns Undefined when an argument is Undefined or of the
 * wrong type at run time (edgeHub), except the is_* type checks, which always return true or false.
 */
export interface Builtin {
  name: string;
  minArgs: number;
  maxArgs: number;
  /** Parameter types by position; the last one repeats for variadic functions. `any` accepts anything. */
  params: readonly StaticType[];
  returns: StaticType;
  fn: (args: readonly Value[]) => Value;
}

const isNum = (v: Value): v is number => typeof v === "number";
const isStr = (v: Value): v is string => typeof v === "string";

function math(name: string, f: (n: number) => number): Builtin {
  return { name, minArgs: 1, maxArgs: 1, params: ["number"], returns: "number", fn: ([a]) => (isNum(a) ? num(f(a)) : undefined) };
}

function typeCheck(name: string, test: (v: Value) => boolean): Builtin {
  return { name, minArgs: 1, maxArgs: 1, params: ["any"], returns: "bool", fn: ([a]) => test(a) };
}

function strings2(name: string, returns: StaticType, f: (s: string, t: string) => Value): Builtin {
  return { name, minArgs: 2, maxArgs: 2, params: ["string", "string"], returns, fn: ([a, b]) => (isStr(a) && isStr(b) ? f(a, b) : undefined) };
}

/** Decimal numbers only, surrounding whitespace allowed (no hex, no "Infinity", no empty string). */
const DECIMAL = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

const LIST: Builtin[] = [
  math("abs", Math.abs),
  math("ceiling", Math.ceil),
  math("exp", Math.exp),
  math("floor", Math.floor),
  // Math.sign(-0) is -0; IoT Hub's sign returns 0.
  math("sign", (n) => Math.sign(n) + 0),
  math("sqrt", Math.sqrt),
  math("square", (n) => n * n),
  {
    name: "power", minArgs: 2, maxArgs: 2, params: ["number", "number"], returns: "number",
    fn: ([a, b]) => (isNum(a) && isNum(b) ? num(Math.pow(a, b)) : undefined),
  },
  {
    name: "as_number", minArgs: 1, maxArgs: 1, params: ["any"], returns: "number",
    fn: ([a]) => (isNum(a) ? a : isStr(a) && DECIMAL.test(a) ? num(Number(a)) : undefined),
  },
  typeCheck("is_bool", (v) => typeof v === "boolean"),
  typeCheck("is_defined", (v) => v !== undefined),
  typeCheck("is_null", (v) => v === null),
  typeCheck("is_number", (v) => typeof v === "number"),
  typeCheck("is_string", (v) => typeof v === "string"),
  {
    name: "concat", minArgs: 2, maxArgs: Infinity, params: ["string"], returns: "string",
    fn: (args) => (args.every(isStr) ? (args as string[]).join("") : undefined),
  },
  strings2("contains", "bool", (s, t) => s.includes(t)),
  strings2("starts_with", "bool", (s, t) => s.startsWith(t)),
  strings2("ends_with", "bool", (s, t) => s.endsWith(t)),
  strings2("index_of", "number", (s, t) => s.indexOf(t)),
  { name: "length", minArgs: 1, maxArgs: 1, params: ["string"], returns: "number", fn: ([a]) => (isStr(a) ? a.length : undefined) },
  { name: "lower", minArgs: 1, maxArgs: 1, params: ["string"], returns: "string", fn: ([a]) => (isStr(a) ? a.toLowerCase() : undefined) },
  { name: "upper", minArgs: 1, maxArgs: 1, params: ["string"], returns: "string", fn: ([a]) => (isStr(a) ? a.toUpperCase() : undefined) },
  {
    // substring(s, start[, length]): zero-based; out of range or non-integer positions are Undefined
    // (edgeHub's .NET Substring throws there, which it turns into Undefined).
    name: "substring", minArgs: 2, maxArgs: 3, params: ["string", "number", "number"], returns: "string",
    fn: (args) => {
      const [s, start, length] = args;
      if (!isStr(s) || !isNum(start) || !Number.isInteger(start) || start < 0 || start > s.length) return undefined;
      if (args.length === 2) return s.slice(start);
      if (!isNum(length) || !Number.isInteger(length) || length < 0 || start + length > s.length) return undefined;
      return s.slice(start, start + length);
    },
  },
];

/** Built-ins by lower-case name: function names are case-insensitive, as in edgeHub. */
export const BUILTINS: ReadonlyMap<string, Builtin> = new Map(LIST.map((b) => [b.name, b]));

export const BUILTIN_NAMES: readonly string[] = LIST.map((b) => b.name).sort();
