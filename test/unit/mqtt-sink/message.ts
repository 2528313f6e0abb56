import type { Message } from "../../../core/index.js";

/** A stamped message as the hub would hand it to a sink. */
export function message(over: Partial<Message> = {}): Message {
  return {
    id: "root:1",
    origin: "root",
    source: "d1",
    enqueuedTime: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
    deadline: Date.UTC(2026, 0, 2, 5, 4, 5, 678),
    priority: 0,
    body: Buffer.from('{"t":21.5}'),
    properties: {},
    systemProperties: {},
    ...over,
  };
}
