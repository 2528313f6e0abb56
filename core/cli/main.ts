#!/usr/bin/env node
import "../quiet-debug.js";
import "reflect-metadata";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { isStrataError, StrataAggregateError } from "../errors.js";
import { defaultPlugins } from "../gateway.js";
import { loadPluginEntries } from "../plugin/loader.js";
import type { PluginCommand } from "../plugin/api.js";
import { checkCommand } from "./check.js";
import { childCommand, CHILD_USAGE } from "./child.js";
import { resolveConfig } from "./context.js";
import { deadLettersCommand } from "./deadletters.js";
import { identityCommand, IDENTITY_USAGE } from "./identity.js";
import { imagesCommand, IMAGES_USAGE } from "./images.js";
import { enrollmentCommand, ENROLLMENT_USAGE, provisionCommand, PROVISION_USAGE } from "./provision.js";
import { consoleOutput, type Output } from "./output.js";
import { startCommand } from "./start.js";
import { pkiCommand, PKI_USAGE } from "./pki.js";
import { backupCommand, BACKUP_USAGE } from "./backup.js";

const USAGE = `strata — a nested IoT gateway

  strata start [--config <file>] [--address <127.0.0.N>]   run the gateway (no config: a root on localhost)
  strata check [--config <file>] [--tree]                   check config, certificates, ports, store, parent, clock
                                                            (--tree: every gateway below, from the root)
  strata identity add|list|show|remove …                    manage identities (see 'strata help identity')
  strata deadletters list [--limit N] [--json]              messages this gateway could never deliver, with the reason
  strata child add|install|list …                           set up child gateways (see 'strata help child')
  strata pki init|issue-edge-ca|issue-server|issue-device|show|trust-bundle   certificates (see 'strata help pki')
  strata backup <file> | strata restore <file>              back up the running gateway, restore on a fresh data dir
  strata provision run|status …                             first-boot factory provisioning (see 'strata help provision')
  strata enrollment add|list|remove|derive …                enrollment groups at the root (see 'strata help enrollment')
  strata images prefetch <ref>…                             pull images through this gateway so every cache on the way keeps them
PLUGIN_COMMANDS
Config: --config <file>, else /etc/strata/strata.toml, else the embedded default under ./.strata.`;

const BUILTIN_DIR = join(__dirname, "..", "..", "plugins");

/** Runs one `strata` command; returns the exit code. */
export async function main(argv: readonly string[], out: Output = consoleOutput): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "start": return await startCommand(flagsOf(rest), out);
      case "check":
        // The whole tree is seen from the root by the plugin that collects every gateway's state (`tree --check`).
        if (rest.includes("--tree")) return await runPluginCommand(["tree", "--check", ...rest.filter((a) => a !== "--tree")], out);
        return await checkCommand(flagsOf(rest), out);
      case "identity": return await identityCommand(rest, out);
      case "deadletters": return await deadLettersCommand(rest, out);
      case "child": return await childCommand(rest, out);
      case "pki": return await pkiCommand(rest, out);
      case "backup": case "restore": return await backupCommand(command, rest, out);
      case "provision": return await provisionCommand(rest, out);
      case "enrollment": return await enrollmentCommand(rest, out);
      case "images": return await imagesCommand(rest, out);
      case undefined: case "help": case "--help": case "-h":
        if (rest[0] === "identity") out.info(IDENTITY_USAGE);
        else if (rest[0] === "child") out.info(CHILD_USAGE);
        else if (rest[0] === "pki") out.info(PKI_USAGE);
        else if (rest[0] === "backup" || rest[0] === "restore") out.info(BACKUP_USAGE);
        else if (rest[0] === "provision") out.info(PROVISION_USAGE);
        else if (rest[0] === "enrollment") out.info(ENROLLMENT_USAGE);
        else if (rest[0] === "images") out.info(IMAGES_USAGE);
        else out.info(USAGE.replace("PLUGIN_COMMANDS", (await pluginCommands(rest)).map((c) => `  strata ${c.name.padEnd(52)} ${c.summary}`).join("\n")));
        return 0;
      default: return await runPluginCommand(argv, out);
    }
  } catch (err) {
    out.error(describe(err));
    return 1;
  }
}

function flagsOf(args: readonly string[]): { config?: string; address?: string } {
  const { values } = parseArgs({ args: [...args], options: { config: { type: "string" }, address: { type: "string" } } });
  return values;
}

/** Commands plugins contribute (e.g. the root's `telemetry tail`), from the config's plugins and the defaults. */
async function pluginCommands(args: readonly string[]): Promise<{ name: string; summary: string; command: PluginCommand; plugin: string }[]> {
  const configFlag = args.indexOf("--config");
  const { config } = await resolveConfig({ config: configFlag >= 0 ? args[configFlag + 1] : undefined }, { prepareEmbedded: false });
  const entries = loadPluginEntries(config.plugins, { builtinDir: BUILTIN_DIR, defaults: defaultPlugins(!config.parent) });
  return entries.flatMap((e) => (e.module.commands ?? []).map((command) => ({ name: command.name, summary: command.summary, command, plugin: e.module.manifest.name })));
}

async function runPluginCommand(argv: readonly string[], out: Output): Promise<number> {
  const commands = await pluginCommands(argv);
  const match = commands
    .filter((c) => { const words = c.name.split(" "); return words.every((w, i) => argv[i] === w); })
    .sort((a, b) => b.name.length - a.name.length)[0];
  if (!match) {
    out.error(`unknown command '${argv.join(" ")}'\n\n${USAGE.replace("PLUGIN_COMMANDS", commands.map((c) => `  strata ${c.name}`).join("\n"))}`);
    return 2;
  }
  const args = argv.slice(match.name.split(" ").length);
  const configFlag = args.indexOf("--config");
  const { config } = await resolveConfig({ config: configFlag >= 0 ? args[configFlag + 1] : undefined }, { prepareEmbedded: false });
  const dataDir = join(config.data_dir, "plugins", match.plugin);
  mkdirSync(dataDir, { recursive: true });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    return await match.command.run(args, { config, dataDir, stdout: process.stdout, stderr: process.stderr, signal: abort.signal });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** An operator sees the message and code, not a stack (set STRATA_DEBUG=1 for the stack). */
function describe(err: unknown): string {
  if (process.env.STRATA_DEBUG) return String((err as Error)?.stack ?? err);
  if (err instanceof StrataAggregateError) return `error ${err.code}:\n${err.errors.map((e) => `  - ${e.message}`).join("\n")}`;
  if (isStrataError(err)) return `error ${err.code}: ${err.message}`;
  return `error: ${(err as Error)?.message ?? String(err)}`;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => { process.stderr.write(`${describe(err)}\n`); process.exitCode = 1; },
  );
}
