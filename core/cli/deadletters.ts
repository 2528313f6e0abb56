import { parseArgs } from "node:util";
import { StrataError } from "../errors.js";
import { DEADLETTERS_PATH, errorText, GatewayUnreachable, type DeadLettersAnswer } from "../scope/index.js";
import { localGatewayClient } from "./child.js";
import { resolveConfig } from "./context.js";
import type { Output } from "./output.js";

export const DEADLETTERS_USAGE = `strata deadletters list [--limit N] [--json] [--config <file>]
      messages this gateway could never deliver, newest last, with the endpoint and the reason`;

/**
 * `strata deadletters list`: asks the running gateway (its own identity's token, as `child list` does) for the
 * dead-letter counter and the newest dead letters. Bodies are never shown.
 */
export async function deadLettersCommand(args: readonly string[], out: Output): Promise<number> {
  const [verb, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: { config: { type: "string" }, limit: { type: "string" }, json: { type: "boolean" }, "https-port": { type: "string" } },
  });
  const limit = Number(values.limit ?? "20");
  if (verb !== "list" || !Number.isInteger(limit) || limit < 1) {
    out.error(DEADLETTERS_USAGE);
    return 2;
  }
  const { config } = await resolveConfig({ config: values.config }, { prepareEmbedded: false });
  const client = localGatewayClient(config, values["https-port"] ? Number(values["https-port"]) : undefined);
  let res;
  try {
    res = await client.request("GET", `${DEADLETTERS_PATH}?limit=${limit}`, undefined, { timeoutMs: 20_000 });
  } catch (err) {
    const detail = err instanceof GatewayUnreachable ? err.message : String(err);
    throw new StrataError("STRATA_CLI_GATEWAY_UNREACHABLE", `this gateway's https front does not answer (${detail}); start it first (strata start)`, { cause: err });
  } finally {
    client.close();
  }
  if (res.status !== 200) throw new StrataError("STRATA_CLI_SERVICE_API", `GET ${DEADLETTERS_PATH} answered ${res.status}: ${errorText(res.body)}`);
  const answer = res.body as DeadLettersAnswer;
  if (values.json) {
    out.info(JSON.stringify(answer));
    return 0;
  }
  out.info(`${answer.deadLettered} dead-lettered since start; newest ${answer.deadLetters.length}:`);
  for (const d of answer.deadLetters) {
    out.info(`${new Date(d.at).toISOString()}  ${d.id.padEnd(20)} ${d.source.padEnd(24)} ${d.endpoint.padEnd(12)} ${d.reason}`);
  }
  return 0;
}
