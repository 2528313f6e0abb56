import { RouteParseFault, ROUTE_SYNTAX } from "./errors.js";

/** The FROM clause of a route: which messages it looks at. */
export type RouteSource =
  | { kind: "all" } // /*  (telemetry and twin change notifications)
  | { kind: "messages" } // /messages/*
  | { kind: "modules" } // /messages/modules/*
  | { kind: "module"; module: string } // /messages/modules/{m}/*
  | { kind: "module-outputs"; module: string } // /messages/modules/{m}/outputs/*
  | { kind: "module-output"; module: string; output: string } // /messages/modules/{m}/outputs/{o}
  | { kind: "twinChangeNotifications" }; // /twinChangeNotifications

export type MessageKind = "telemetry" | "twinChangeNotifications";

/**
 * Parse a source path; `pos` is the path's offset in the route text, so a fault points at the segment.
 * Fixed words (`messages`, `modules`, `outputs`, `twinChangeNotifications`) are case-insensitive;
 * module and output names are case-sensitive, as IoT Hub identities are.
 */
export function parseSource(path: string, pos: number): RouteSource {
  if (path === "") throw new RouteParseFault(ROUTE_SYNTAX, pos, "expected a source such as /messages/* after FROM");
  if (!path.startsWith("/")) throw new RouteParseFault(ROUTE_SYNTAX, pos, "expected a source starting with '/' (for example /messages/*)");
  const segments: { text: string; at: number }[] = [];
  let at = pos + 1;
  for (const text of path.slice(1).split("/")) {
    segments.push({ text, at });
    at += text.length + 1;
  }
  const end = pos + path.length;
  let i = 0;
  const take = (expected: string): { text: string; at: number } => {
    const s = segments[i++];
    if (s === undefined) throw new RouteParseFault(ROUTE_SYNTAX, end, `expected ${expected}`);
    if (s.text === "") throw new RouteParseFault(ROUTE_SYNTAX, s.at, `expected ${expected}`);
    return s;
  };
  const done = (source: RouteSource): RouteSource => {
    const extra = segments[i];
    if (extra !== undefined) throw new RouteParseFault(ROUTE_SYNTAX, extra.at - 1, "expected the end of the source path (or WHERE / INTO after a space)");
    return source;
  };
  const is = (s: { text: string }, word: string) => s.text.toLowerCase() === word.toLowerCase();

  const first = take("'*', 'messages' or 'twinChangeNotifications' after '/'");
  if (first.text === "*") return done({ kind: "all" });
  if (is(first, "twinChangeNotifications")) return done({ kind: "twinChangeNotifications" });
  if (!is(first, "messages")) throw new RouteParseFault(ROUTE_SYNTAX, first.at, "expected '*', 'messages' or 'twinChangeNotifications' after '/'");

  const second = take("'*' or 'modules' after /messages/");
  if (second.text === "*") return done({ kind: "messages" });
  if (!is(second, "modules")) throw new RouteParseFault(ROUTE_SYNTAX, second.at, "expected '*' or 'modules' after /messages/");

  const module = take("'*' or a module name after /messages/modules/");
  if (module.text === "*") return done({ kind: "modules" });

  const fourth = take(`'*' or 'outputs' after /messages/modules/${module.text}/`);
  if (fourth.text === "*") return done({ kind: "module", module: module.text });
  if (!is(fourth, "outputs")) throw new RouteParseFault(ROUTE_SYNTAX, fourth.at, `expected '*' or 'outputs' after /messages/modules/${module.text}/`);

  const output = take(`'*' or an output name after /messages/modules/${module.text}/outputs/`);
  if (output.text === "*") return done({ kind: "module-outputs", module: module.text });
  return done({ kind: "module-output", module: module.text, output: output.text });
}

/**
 * Whether a message from `moduleId` (undefined for a device) with `outputName` falls under the source.
 * A module output is a message from a module that carries `systemProperties.outputName`.
 */
export function sourceMatches(
  source: RouteSource,
  kind: MessageKind,
  moduleId: string | undefined,
  outputName: string | undefined,
): boolean {
  if (source.kind === "all") return true;
  if (kind === "twinChangeNotifications") return source.kind === "twinChangeNotifications";
  switch (source.kind) {
    case "twinChangeNotifications": return false;
    case "messages": return true;
    case "modules": return moduleId !== undefined;
    case "module": return moduleId === source.module;
    case "module-outputs": return moduleId === source.module && !!outputName;
    case "module-output": return moduleId === source.module && outputName === source.output;
  }
}

/** The source as route text, for `strata check` and logs. */
export function formatSource(source: RouteSource): string {
  switch (source.kind) {
    case "all": return "/*";
    case "messages": return "/messages/*";
    case "modules": return "/messages/modules/*";
    case "module": return `/messages/modules/${source.module}/*`;
    case "module-outputs": return `/messages/modules/${source.module}/outputs/*`;
    case "module-output": return `/messages/modules/${source.module}/outputs/${source.output}`;
    case "twinChangeNotifications": return "/twinChangeNotifications";
  }
}
