import type { Value } from "./values.js";

export type BinaryOp =
  | "*" | "/" | "%" | "+" | "-" | "||"
  | "<" | "<=" | ">" | ">=" | "=" | "!=" | "<>"
  | "AND" | "OR" | "??";

/** A parsed condition. `pos` is the 0-based offset of the node (of the operator, for operators). */
export type Expr =
  | { kind: "literal"; value: Value; pos: number }
  | { kind: "property"; name: string; pos: number }
  | { kind: "system"; name: string; pos: number }
  | { kind: "body"; path: (string | number)[]; pos: number }
  | { kind: "unary"; op: "NOT" | "-"; operand: Expr; pos: number }
  | { kind: "binary"; op: BinaryOp; left: Expr; right: Expr; pos: number }
  | { kind: "call"; name: string; args: Expr[]; pos: number };
