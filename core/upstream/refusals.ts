// Which refusals from the parent are permanent (dead-letter) and which are retried. The table is the
// documentation too: core/upstream/README.md repeats it for operators.
import type { DeliveryOutcome } from "../hub/types.js";

/**
 * AMQP error conditions a parent uses to refuse one message for good: sending it again can only fail again,
 * and keeping it would block the messages behind it.
 */
export const PERMANENT_CONDITIONS: ReadonlySet<string> = new Set([
  "amqp:link:message-size-exceeded", // larger than the parent's limit (1 MiB)
  "amqp:decode-error", // the parent cannot parse it
  "amqp:invalid-field", // a field the parent refuses (e.g. a Strata id that is not a string)
  "amqp:not-implemented",
]);

/**
 * Conditions that mean "this identity may not send through you": not in the parent's scope, unknown, or
 * disabled there. Permanent, but only after REFUSAL_ATTEMPTS refusals in a row, so that a scope change
 * still in flight (the parent learning an identity a moment after the child) costs a retry, not a message.
 */
export const IDENTITY_REFUSED_CONDITIONS: ReadonlySet<string> = new Set([
  "amqp:unauthorized-access",
  "amqp:not-found",
  "amqp:not-allowed",
]);

export const REFUSAL_ATTEMPTS = 3;

/** A refusal as the parent sent it (a rejected disposition's or a link detach's error). */
export interface Refusal {
  condition?: string;
  description?: string;
}

/**
 * Everything else is retried: released / modified dispositions, `amqp:internal-error`,
 * `amqp:resource-limit-exceeded` (the parent's store is at its quota), `com.microsoft:server-busy`, a
 * timeout, a link or connection lost before the parent settled.
 */
export function outcomeForRefusal(refusal: Refusal, attempts: number): DeliveryOutcome {
  const condition = refusal.condition ?? "";
  const why = `refused by the parent: ${condition || "no condition"}${refusal.description ? ` (${refusal.description})` : ""}`;
  if (PERMANENT_CONDITIONS.has(condition)) return { deadLetter: why };
  if (IDENTITY_REFUSED_CONDITIONS.has(condition) && attempts + 1 >= REFUSAL_ATTEMPTS) {
    return { deadLetter: `${why}, ${REFUSAL_ATTEMPTS} times` };
  }
  return "retry";
}

/** rhea hands conditions as strings or as symbols wrapped in an object; normalise to a string. */
export function conditionOf(error: unknown): Refusal {
  if (!error || typeof error !== "object") return {};
  const e = error as { condition?: unknown; description?: unknown };
  const condition = typeof e.condition === "string" ? e.condition : e.condition !== undefined ? String(e.condition) : undefined;
  const description = typeof e.description === "string" ? e.description : undefined;
  return { ...(condition ? { condition } : {}), ...(description ? { description } : {}) };
}
