import type { z } from "zod";

/**
 * Turns zod issues into one line per problem, each naming the full key path (`listen.mqtt`,
 * `plugins.mqtt.port`) and what is expected, so an operator can fix the file without reading a schema.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], input: unknown, prefix: readonly PropertyKey[] = []): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        lines.push(`${keyPath([...path, key])}: unknown key; check its spelling or remove it`);
      }
      continue;
    }
    if (issue.code === "invalid_union" && issue.errors.length > 0) {
      // A union (a route as a string or a table): report the branch that got furthest, not "invalid input".
      const best = [...issue.errors].sort((a, b) => depth(b) - depth(a))[0]!;
      lines.push(...describeIssues(best, valueAt(input, issue.path), path));
      continue;
    }
    lines.push(`${keyPath(path)}: ${explain(issue, valueAt(input, issue.path))}`);
  }
  return lines;
}

/** `a.b.c`, array indexes as `[0]`, keys that are not bare TOML keys quoted. */
export function keyPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else {
      const s = String(part);
      const bare = /^[A-Za-z0-9_-]+$/.test(s) ? s : JSON.stringify(s);
      out += out === "" ? bare : `.${bare}`;
    }
  }
  return out === "" ? "(top level)" : out;
}

function depth(issues: readonly z.core.$ZodIssue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length));
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const part of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[part];
  }
  return v;
}

function describeValue(v: unknown): string {
  if (Array.isArray(v)) return "an array";
  if (v === null) return "null";
  if (typeof v === "object") return "a table";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  return `${typeof v} ${String(v)}`;
}

function explain(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case "invalid_type":
      if (value === undefined) return `is required (expected ${article(issue.expected)})`;
      return `must be ${article(issue.expected)}, got ${describeValue(value)}`;
    case "too_big":
      if (issue.origin === "string") return `must be at most ${issue.maximum} characters`;
      return `must be ${issue.inclusive === false ? "<" : "<="} ${issue.maximum}, got ${describeValue(value)}`;
    case "too_small":
      if (issue.origin === "string" && Number(issue.minimum) === 1) return "must not be empty";
      if (issue.origin === "string") return `must be at least ${issue.minimum} characters`;
      return `must be ${issue.inclusive === false ? ">" : ">="} ${issue.minimum}, got ${describeValue(value)}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${describeValue(value)}`;
    case "invalid_format":
      return `${issue.message}, got ${describeValue(value)}`;
    default:
      return issue.message;
  }
}

function article(expected: string): string {
  if (expected === "object") return "table";
  if (expected === "int") return "an integer";
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}
