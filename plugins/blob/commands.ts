import { readFileSync } from "node:fs";
import https from "node:https";
import { isIP } from "node:net";
import { readSecret, signSas, StrataError, type PluginCommand, type PluginCommandContext, type StrataConfig } from "../../core/index.js";
import type { TreeEntry } from "./tree-bundle.js";

interface MethodAnswer {
  status: number;
  payload: Record<string, unknown>;
}

/**
 * A direct method on `{device}/$edgeAgent` through the running root's service API (as azure-iothub's
 * `Client.invokeDeviceMethod` does), signed with the owner key.
 */
export function invokeAgent(config: StrataConfig, device: string, methodName: string, payload: unknown): Promise<MethodAnswer> {
  if (!config.service) {
    return Promise.reject(new StrataError("STRATA_BLOB_NOT_ROOT", "this gateway has no [service] section: run strata support-bundle on the root, which reaches every gateway"));
  }
  const key = readSecret(config.service.owner_key_file, "service.owner_key_file").trim();
  const token = signSas({ resource: config.hub, key, keyName: "iothubowner", expirySecs: Math.floor(Date.now() / 1000) + 300 });
  const body = JSON.stringify({ methodName, payload, responseTimeoutInSeconds: 15 });
  const host = config.listen.address;
  return new Promise((resolve, reject) => {
    const req = https.request({
      host, port: config.listen.https, method: "POST", ca: readFileSync(config.tls.ca_file, "utf8"),
      ...(isIP(config.hostname) ? {} : { servername: config.hostname }),
      path: `/twins/${encodeURIComponent(device)}/modules/${encodeURIComponent("$edgeAgent")}/methods?api-version=2021-04-12`,
      headers: { authorization: token, "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      timeout: 30_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode === 200) return resolve(JSON.parse(text) as MethodAnswer);
        reject(new StrataError("STRATA_BLOB_ROOT_ANSWER", `the root answered ${res.statusCode} to ${methodName} on ${device}/$edgeAgent: ${text.slice(0, 300)}`));
      });
    });
    req.once("timeout", () => req.destroy(new Error("timed out after 30 s")));
    req.once("error", (err) => reject(new StrataError("STRATA_BLOB_ROOT_UNREACHABLE",
      `cannot reach the running root at ${host}:${config.listen.https} (${err.message}); start it (strata start) or pass its --config`, { cause: err })));
    req.end(body);
  });
}

function flagValue(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function positional(args: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (["--config", "--since", "--until", "--timeout"].includes(args[i]!)) i++;
    else if (!args[i]!.startsWith("--")) words.push(args[i]!);
  }
  return words;
}

const FINISHED = new Set(["Completed", "Failed", "Cancelled"]);

/** One line per gateway: id, status, where the bundle is (store and cloud) or why it failed. */
export function renderIndex(entries: readonly TreeEntry[]): string {
  const width = Math.max(7, ...entries.map((e) => e.gateway.length + e.depth * 2));
  return entries.map((e) => {
    const name = `${"  ".repeat(e.depth)}${e.gateway}`.padEnd(width);
    const where = e.status === "Completed"
      ? `${e.container}/${e.blob}${e.cloud ? `  cloud: ${e.cloud}` : "  (container not uploaded)"}`
      : e.message;
    return `${name}  ${e.status.padEnd(9)}  ${where}`;
  }).join("\n");
}

export const supportBundleCommand: PluginCommand = {
  name: "support-bundle",
  summary: "UploadSupportBundle on a gateway, or with --tree on every gateway (progress, then an index)",
  usage: [
    "strata support-bundle [<deviceId>] [--tree] [--since 1h] [--until <time>] [--timeout <secs>] [--json] [--config <file>]",
    "",
    "  Run on the root, with the gateway running. Calls $edgeAgent's UploadSupportBundle and follows GetTaskStatus.",
    "  <deviceId>  the gateway to bundle (default: the root itself)",
    "  --tree      every gateway of the hierarchy; the root writes an index (support-trees/<time>.json) listing",
    "              each gateway's bundle blob, its cloud name, or why it failed. Exit 1 when any failed.",
    "  --timeout   seconds each gateway gets (default 120); a gateway that is down fails at once",
    "  --json      print the final GetTaskStatus payload as JSON",
  ].join("\n"),
  async run(args, ctx) {
    const config = ctx.config as StrataConfig;
    const tree = args.includes("--tree");
    const device = tree ? config.device_id : (positional(args)[0] ?? config.device_id);
    const timeoutSecs = Number(flagValue(args, "--timeout") ?? 120);
    if (!Number.isFinite(timeoutSecs) || timeoutSecs < 1) {
      ctx.stderr.write("--timeout: seconds, at least 1\n");
      return 2;
    }
    const since = flagValue(args, "--since");
    const until = flagValue(args, "--until");
    const payload = { schemaVersion: "1.0", ...(since ? { since } : {}), ...(until ? { until } : {}), ...(tree ? { tree: true, timeoutSecs } : {}) };
    const started = await invokeAgent(config, device, "UploadSupportBundle", payload);
    const correlationId = started.payload["correlationId"];
    if (started.status !== 200 || typeof correlationId !== "string") {
      ctx.stderr.write(`UploadSupportBundle on ${device}: ${started.status} ${JSON.stringify(started.payload)}\n`);
      return 1;
    }
    ctx.stdout.write(`${tree ? "whole-tree bundle" : `support bundle of ${device}`}: task ${correlationId}\n`);
    const final = await follow(config, device, correlationId, timeoutSecs, ctx);
    if (args.includes("--json")) ctx.stdout.write(`${JSON.stringify(final)}\n`);
    else if (tree && Array.isArray(final["gateways"])) {
      ctx.stdout.write(`${renderIndex(final["gateways"] as TreeEntry[])}\n`);
      ctx.stdout.write(`index: ${String(final["container"])}/${String(final["blob"])}${final["cloud"] ? ` (cloud: ${String(final["cloud"])})` : ""}\n`);
    } else ctx.stdout.write(`${String(final["status"])}: ${String(final["message"])}${final["cloud"] ? ` (cloud: ${String(final["cloud"])})` : ""}\n`);
    const gatewaysOk = !Array.isArray(final["gateways"]) || (final["gateways"] as TreeEntry[]).every((g) => g.status === "Completed");
    return final["status"] === "Completed" && gatewaysOk ? 0 : 1;
  },
};

/** Polls GetTaskStatus, printing each gateway's change of state, until the task finishes or the deadline passes. */
async function follow(config: StrataConfig, device: string, correlationId: string, timeoutSecs: number, ctx: PluginCommandContext): Promise<Record<string, unknown>> {
  // The root bounds each gateway by timeoutSecs; the margin covers the index write and this poll's own lag.
  const deadline = Date.now() + (timeoutSecs + 30) * 1000;
  const shown = new Map<string, string>();
  for (;;) {
    const s = await invokeAgent(config, device, "GetTaskStatus", { schemaVersion: "1.0", correlationId });
    const p = s.payload;
    for (const g of (Array.isArray(p["gateways"]) ? p["gateways"] : []) as TreeEntry[]) {
      if (g.status === "NotStarted" || shown.get(g.gateway) === g.status) continue;
      shown.set(g.gateway, g.status);
      const detail = g.status === "Completed" ? ` ${g.container}/${g.blob}` : g.status === "Failed" ? ` ${g.message}` : "";
      ctx.stdout.write(`[${String(p["done"])}/${String(p["total"])}] ${g.gateway} ${g.status}${detail}\n`);
    }
    if (s.status !== 200 || FINISHED.has(String(p["status"]))) return p;
    if (Date.now() > deadline || ctx.signal.aborted) return { ...p, status: "Failed", message: `still ${String(p["status"])} after ${timeoutSecs + 30} s: ${String(p["message"])}` };
    await new Promise((r) => setTimeout(r, 1000));
  }
}
