import { readFileSync } from "node:fs";
import https from "node:https";
import {
  readSecret, signSas, StrataError, type PluginCommand, type PluginCommandContext, type StrataConfig,
} from "../../core/index.js";
import { renderTrace, renderTree, renderTreeCheck } from "./render.js";
import type { TraceView, TreeView } from "./tree.js";

/** GET a JSON document from the running root's front, with an owner SAS token (as azure-iothub signs it). */
export function askRoot<T>(config: StrataConfig, path: string): Promise<T> {
  if (!config.service) {
    return Promise.reject(new StrataError("STRATA_METRICS_NOT_ROOT", "this gateway has no [service] section: run strata tree / trace / tree --check on the root, which holds the state of every layer"));
  }
  const key = readSecret(config.service.owner_key_file, "service.owner_key_file").trim();
  const token = signSas({ resource: config.hub, key, keyName: "iothubowner", expirySecs: Math.floor(Date.now() / 1000) + 300 });
  const ca = readFileSync(config.tls.ca_file, "utf8");
  return new Promise((resolve, reject) => {
    const req = https.get({ host: config.listen.address, port: config.listen.https, path, ca, servername: config.hostname, headers: { authorization: token }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode === 200) return resolve(JSON.parse(text) as T);
        const hint = res.statusCode === 404 ? "; is [plugins.metrics] enabled on the root?" : "";
        reject(new StrataError("STRATA_METRICS_ROOT_ANSWER", `the root answered ${res.statusCode} to GET ${path}: ${text.slice(0, 300)}${hint}`));
      });
    });
    req.once("timeout", () => req.destroy(new Error("timed out after 10 s")));
    req.once("error", (err) => reject(new StrataError("STRATA_METRICS_ROOT_UNREACHABLE",
      `cannot reach the running root at ${config.listen.address}:${config.listen.https} (${err.message}); start it (strata start) or pass its --config`, { cause: err })));
  });
}

/** Positional arguments with the CLI's own --config (already applied) removed. */
function positional(args: readonly string[]): { words: string[]; flags: Set<string> } {
  const words: string[] = [];
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--config") i++;
    else if (a.startsWith("--")) flags.add(a.split("=")[0]!);
    else words.push(a);
  }
  return { words, flags };
}

function print(ctx: PluginCommandContext, text: string): void {
  ctx.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

export const treeCommand: PluginCommand = {
  name: "tree",
  summary: "show the gateway hierarchy (link, children, queue, oldest message, last seen); --check: strata check on every gateway",
  usage: "strata tree [--json] [--check] [--config <file>]\n\n  --check  print each gateway's newest `strata check` (exit 1 when any failed or never reported)\n  --json   the tree as the root's API returns it",
  async run(args, ctx) {
    const { flags } = positional(args);
    const view = await askRoot<TreeView>(ctx.config as StrataConfig, "/$strata/metrics/tree");
    if (flags.has("--json")) { print(ctx, JSON.stringify(view)); return 0; }
    if (flags.has("--check")) {
      const { text, failed } = renderTreeCheck(view);
      print(ctx, text);
      return failed ? 1 : 0;
    }
    print(ctx, renderTree(view));
    return 0;
  },
};

export const traceCommand: PluginCommand = {
  name: "trace",
  summary: "show where a Strata message id (origin:sequence) is in the tree",
  usage: "strata trace <strataId> [--json] [--config <file>]",
  async run(args, ctx) {
    const { words, flags } = positional(args);
    const id = words[0];
    if (!id) { ctx.stderr.write("usage: strata trace <strataId> (e.g. gw5:1234)\n"); return 2; }
    const view = await askRoot<TraceView>(ctx.config as StrataConfig, `/$strata/metrics/trace/${encodeURIComponent(id)}`);
    print(ctx, flags.has("--json") ? JSON.stringify(view) : renderTrace(view));
    return view.path.length > 0 ? 0 : 1;
  },
};
