import type { Message } from "../../core/index.js";
import { splitIdentityId } from "../../core/index.js";

/** What a topic template may name. */
export const TOPIC_PLACEHOLDERS = ["deviceId", "moduleId", "outputName", "origin", "hub", "sink"] as const;
export type TopicPlaceholder = (typeof TOPIC_PLACEHOLDERS)[number];

/** Values for the placeholders that do not come from the message. */
export interface TopicContext {
  hub: string;
  sink: string;
}

const PLACEHOLDER = /\{([^{}]*)\}/g;

/**
 * Why a template cannot make valid topics, or undefined when it can. Wildcards (`+`, `#`) are not allowed
 * in a topic one publishes to [MQTT-3.3.2-2], nor the null character [MQTT-4.7.3-2].
 */
export function templateProblem(template: string): string | undefined {
  const literal = template.replace(PLACEHOLDER, "");
  if (/[+#\u0000]/.test(literal)) return "a topic to publish to may not contain +, # or NUL";
  if (/[{}]/.test(literal)) return "has an unbalanced { or }";
  for (const [, name] of template.matchAll(PLACEHOLDER)) {
    if (!(TOPIC_PLACEHOLDERS as readonly string[]).includes(name!)) {
      return `names an unknown placeholder {${name}}; use ${TOPIC_PLACEHOLDERS.map((p) => `{${p}}`).join(" ")}`;
    }
  }
  return undefined;
}

/**
 * A placeholder's value becomes exactly one topic level: `/`, the wildcards and NUL are percent-encoded
 * (and `%` itself, so the encoding can be undone). A device id may contain `%` but none of the others.
 */
export function topicLevel(value: string): string {
  return SPECIAL.test(value) ? value.replace(SPECIALS, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`) : value;
}
const SPECIAL = /[%/+#\u0000]/;
const SPECIALS = /[%/+#\u0000]/g;

/**
 * Compiles a checked template into a function from a message to its topic. The template is split once into
 * literal text and placeholders: this runs for every message the sink publishes.
 */
export function compileTopic(template: string, ctx: TopicContext): (message: Message) => string {
  const problem = templateProblem(template);
  if (problem) throw new Error(`topic template ${JSON.stringify(template)} ${problem}`);
  const parts: (string | { name: TopicPlaceholder })[] = [];
  let at = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    if (m.index > at) parts.push(template.slice(at, m.index));
    const name = m[1] as TopicPlaceholder;
    // hub and sink are the same for every message: resolved now.
    parts.push(name === "hub" || name === "sink" ? topicLevel(ctx[name]) : { name });
    at = m.index + m[0].length;
  }
  if (at < template.length) parts.push(template.slice(at));
  return (message) => {
    let topic = "";
    for (const part of parts) topic += typeof part === "string" ? part : topicLevel(placeholderValue(part.name, message));
    return topic;
  };
}

function placeholderValue(name: TopicPlaceholder, message: Message): string {
  switch (name) {
    case "deviceId": return splitIdentityId(message.source).deviceId;
    case "moduleId": return splitIdentityId(message.source).moduleId ?? "";
    case "outputName": return message.systemProperties.outputName ?? "";
    case "origin": return message.origin;
    default: return "";
  }
}

/** The topic for a message: the module template for a module's message, the device template otherwise. */
export function topicRouter(deviceTemplate: string, moduleTemplate: string, ctx: TopicContext): (message: Message) => string {
  const device = compileTopic(deviceTemplate, ctx);
  const module = compileTopic(moduleTemplate, ctx);
  return (message) => (message.source.includes("/") ? module(message) : device(message));
}
