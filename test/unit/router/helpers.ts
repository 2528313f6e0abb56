import type { Message } from "../../../core/message.js";
import { compile } from "../../../core/router/compile.js";
import { MessageView } from "../../../core/router/message-view.js";
import { parseStatement } from "../../../core/router/parser.js";
import type { Value } from "../../../core/router/values.js";

/** A stamped message from `dev1` with no properties; override any field. */
export function msg(over: Partial<Message> = {}): Message {
  return {
    id: "gw:1",
    origin: "gw",
    source: "dev1",
    enqueuedTime: Date.UTC(2024, 0, 2, 3, 4, 5),
    deadline: Date.UTC(2024, 0, 2, 5, 4, 5),
    priority: 0,
    body: Buffer.alloc(0),
    properties: {},
    systemProperties: {},
    ...over,
  };
}

/** A JSON telemetry message (application/json, utf-8) with the given body. */
export function jsonMsg(body: unknown, over: Partial<Message> = {}): Message {
  return msg({
    body: Buffer.from(JSON.stringify(body)),
    systemProperties: { contentType: "application/json", contentEncoding: "utf-8" },
    ...over,
  });
}

/** The value of a condition-language expression against a message (compiled once, like a route). */
export function value(expr: string, message: Message = msg()): Value {
  const statement = parseStatement(`FROM /* WHERE ${expr} INTO $upstream`);
  return compile(statement.condition!).run(new MessageView(message));
}
