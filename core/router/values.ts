/**
 * The value model of IoT Hub's route condition language. `undefined` is IoT Hub's Undefined (a missing
 * property, a failed conversion, a type mismatch at run time) and propagates through every operator;
 * `null` is JSON's null. Objects and arrays from `$body` are not values (edgeHub returns Undefined for them).
 */
export type Value = boolean | number | string | null | undefined;

/** What the compiler knows of an expression's value before any message arrives. */
export type StaticType = "bool" | "number" | "string" | "null" | "undefined" | "any";

export function typeOf(v: Value): StaticType {
  if (v === undefined) return "undefined";
  if (v === null) return "null";
  switch (typeof v) {
    case "boolean": return "bool";
    case "number": return "number";
    default: return "string";
  }
}

/** Numbers that are not finite (NaN, ±Infinity from sqrt(-1), 1/0) are Undefined, as in edgeHub. */
export function num(n: number): Value {
  return Number.isFinite(n) ? n : undefined;
}

/** Ordinal (UTF-16 code unit) comparison, as edgeHub's `string.CompareOrdinal`. */
function compareOrdinal(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export type EqualityOp = "=" | "!=";
export type OrderOp = "<" | "<=" | ">" | ">=";

/**
 * `=` and `!=`: Undefined if either side is Undefined or the types differ; `null = null` is true and
 * null against a non-null value is Undefined (edgeHub's Null rules).
 */
export function equals(op: EqualityOp, a: Value, b: Value): Value {
  if (a === undefined || b === undefined) return undefined;
  if (a === null || b === null) return a === null && b === null ? op === "=" : undefined;
  if (typeof a !== typeof b) return undefined;
  return op === "=" ? a === b : a !== b;
}

/** `< <= > >=` on two numbers or two strings (ordinal); `null op null` as edgeHub; anything else Undefined. */
export function order(op: OrderOp, a: Value, b: Value): Value {
  if (a === null && b === null) return op === "<=" || op === ">=";
  let c: number;
  if (typeof a === "number" && typeof b === "number") c = a - b;
  else if (typeof a === "string" && typeof b === "string") c = compareOrdinal(a, b);
  else return undefined;
  if (Number.isNaN(c)) return undefined;
  switch (op) {
    case "<": return c < 0;
    case "<=": return c <= 0;
    case ">": return c > 0;
    case ">=": return c >= 0;
  }
}

/**
 * AND / OR / NOT in edgeHub's three-valued logic: false AND x is false, true OR x is true, otherwise an
 * Undefined side makes the result Undefined; null AND … is null (which does not match), null OR b is b.
 */
export function and(a: Value, b: () => Value): Value {
  if (a === false) return false;
  const r = b();
  if (r === false) return false;
  const known = (v: Value) => v === true || v === null;
  if (!known(a) || !known(r)) return undefined;
  return a === null || r === null ? null : true;
}

export function or(a: Value, b: () => Value): Value {
  if (a === true) return true;
  const r = b();
  if (r === true) return true;
  const known = (v: Value) => v === false || v === null;
  if (!known(a) || !known(r)) return undefined;
  return a === null && r === null ? null : false;
}

export function not(a: Value): Value {
  if (a === null) return true;
  return typeof a === "boolean" ? !a : undefined;
}
