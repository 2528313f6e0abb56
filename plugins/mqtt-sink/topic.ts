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
  return value.replace(/[%/+#\u0000]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}

/** Compiles a checked template into a function from a message to its topic. */
export function compileTopic(template: string, ctx: TopicContext): (message: Message) => string {
  const problem = templateProblem(template);
  if (problem) throw new Error(`topic template ${JSON.stringify(template)} ${problem}`);
  return (message) => {
    const { deviceId, moduleId } = splitIdentityId(message.source);
    const values: Record<TopicPlaceholder, string> = {
      deviceId,
      moduleId: moduleId ?? "",
      outputName: message.systemProperties.outputName ?? "",
      origin: message.origin,
      hub: ctx.hub,
      sink: ctx.sink,
    };
    return template.replace(PLACEHOLDER, (_, name: TopicPlaceholder) => topicLevel(values[name]));
  };
}

/** The topic for a message: the module template for a module's message, the device template otherwise. */
export function topicRouter(deviceTemplate: string, moduleTemplate: string, ctx: TopicContext): (message: Message) => string {
  const device = compileTopic(deviceTemplate, ctx);
  const module = compileTopic(moduleTemplate, ctx);
  return (message) => (message.source.includes("/") ? module(message) : device(message));
}
