import { runChecks } from "../cli/check.js";
import type { StrataConfig } from "../config/schema.js";
import type { BoundListener } from "../listeners.js";
import type { CheckResult } from "./state.js";

/**
 * `strata check` as a running gateway runs it on itself for the whole-tree check: the same config,
 * certificate, store, secret, parent and clock checks, except that ports are reported as bound (probing
 * them would find them in use by this very process).
 */
export async function checkRunningGateway(config: StrataConfig, listeners: readonly BoundListener[]): Promise<CheckResult[]> {
  const lines = (await runChecks(config)).filter((l) => l.what !== "port");
  const ports = listeners.map((l): CheckResult => ({ verdict: "ok", what: "port", detail: `${l.name} listening on ${l.address}:${l.port}` }));
  return [...lines.slice(0, 1), ...ports, ...lines.slice(1)];
}
