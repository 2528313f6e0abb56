// `strata provision run|status` (first boot on the new gateway) and `strata enrollment …` (groups at the root).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readSecret } from "../config/secret.js";
import { StrataError } from "../errors.js";
import { createLogger } from "../log.js";
import { deriveDeviceKey, locateProvisioningFile, provisionStatusLine, readProvisioningFile, runProvisioning } from "../provision/index.js";
import { ENROLLMENTS_PATH, type EnrollmentGroup, type EnrollmentSummary } from "../provision/types.js";
import { errorText, GatewayUnreachable } from "../scope/https-client.js";
import { localGatewayClient } from "./child.js";
import { resolveConfig } from "./context.js";
import type { Output } from "./output.js";

export const PROVISION_USAGE = `strata provision run [--file <strata-provision.toml>] [--state <file>] [--retry-for <seconds>]
      first boot: register through the parent named in the provisioning file and install the answer
      (file: --file, else strata.provision=<path> on the kernel command line, else strata-provision.toml on a
      USB stick under /media, /run/media or /mnt, else /boot/efi, /boot/firmware or /boot, else
      /etc/strata/provision.toml); resumable, and a no-op once done
strata provision status [--state <file>]
      where provisioning stands (default state file: <data_dir of the file>/provision.json, /var/lib/strata/provision.json)`;

export const ENROLLMENT_USAGE = `strata enrollment add <group> [--parent <gateway>] [--device] [--disabled]
      on the root: create an enrollment group; prints its keys once (keep them for the factory line)
strata enrollment list | remove <group> | enable <group> | disable <group>
strata enrollment derive --group-key-file <file> <deviceId>…
      on the factory line (offline): the key to flash into each device: base64(HMAC-SHA256(group key, deviceId))
  (common: --config <file>)`;

export const DEFAULT_STATE_FILE = "/var/lib/strata/provision.json";

export async function provisionCommand(args: readonly string[], out: Output): Promise<number> {
  const [verb, ...rest] = args;
  const { values } = parseArgs({ args: rest, options: { file: { type: "string" }, state: { type: "string" }, "retry-for": { type: "string" } } });
  if (verb === "status") {
    const l = provisionStatusLine(values.state ?? DEFAULT_STATE_FILE);
    out.info(`${l.verdict.padEnd(4)}  ${l.what.padEnd(12)} ${l.detail}`);
    return l.verdict === "fail" ? 1 : 0;
  }
  if (verb !== "run") {
    out.error(PROVISION_USAGE);
    return 2;
  }
  const located = locateProvisioningFile(values.file ? { file: values.file } : {});
  if (!located) {
    throw new StrataError("STRATA_PROVISION_NO_FILE", "no provisioning file found: pass --file, set strata.provision=<path> on the kernel command line, or put strata-provision.toml on a USB stick or at /etc/strata/provision.toml");
  }
  out.info(`provisioning file ${located.path} (from ${located.from})`);
  const stateFile = values.state ?? join(readProvisioningFile(located.path).file.data_dir, "provision.json");
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const retry = values["retry-for"] !== undefined ? Number(values["retry-for"]) * 1000 : undefined;
    const r = await runProvisioning({
      file: located.path, stateFile, logger: createLogger({ level: "warn" }), signal: abort.signal,
      progress: (line) => out.info(line), ...(retry !== undefined ? { retryForMs: retry } : {}),
    });
    if (!r.already) out.info(`state: ${stateFile}; start the gateway: systemctl start strata (or strata start --config ${r.state.configFile})`);
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

export async function enrollmentCommand(args: readonly string[], out: Output): Promise<number> {
  const [verb, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true,
    options: { config: { type: "string" }, parent: { type: "string" }, device: { type: "boolean" }, disabled: { type: "boolean" }, "group-key-file": { type: "string" }, "https-port": { type: "string" } },
  });
  if (verb === "derive") {
    if (!values["group-key-file"] || positionals.length === 0) { out.error(ENROLLMENT_USAGE); return 2; }
    const groupKey = readSecret(values["group-key-file"], "--group-key-file");
    for (const id of positionals) out.info(`${id} ${deriveDeviceKey(groupKey, id)}`);
    return 0;
  }
  const name = positionals[0];
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const { config } = await resolveConfig({ config: values.config }, { prepareEmbedded: false });
    if (config.parent) throw new StrataError("STRATA_PROVISION_NOT_ROOT", "enrollment groups live at the root; run strata enrollment on the root gateway");
    const client = localGatewayClient(config, values["https-port"] ? Number(values["https-port"]) : undefined);
    try {
      const res = await client.request(method, path, body, { timeoutMs: 20_000 });
      if (res.status !== 200) throw new StrataError("STRATA_PROVISION_REFUSED", `${method} ${path} answered ${res.status}: ${errorText(res.body)}`);
      return res.body;
    } catch (err) {
      if (err instanceof GatewayUnreachable) throw new StrataError("STRATA_CLI_GATEWAY_UNREACHABLE", `the root's https front does not answer (${err.message}); start it first (strata start)`, { cause: err });
      throw err;
    } finally {
      client.close();
    }
  };
  switch (verb) {
    case "add": {
      if (!name) break;
      const g = (await call("PUT", `${ENROLLMENTS_PATH}/${encodeURIComponent(name)}`, {
        edge: !values.device, status: values.disabled ? "disabled" : "enabled", ...(values.parent ? { parent: values.parent } : {}),
      })) as EnrollmentGroup;
      out.info(`enrollment group ${g.name}: ${g.edge ? "gateways" : "devices"}, ${g.status}, placed ${g.parent ? `under ${g.parent}` : "under the gateway they come through"}\nprimary key   ${g.primaryKey}\nsecondary key ${g.secondaryKey}\nkeep the keys on the factory line only; flash each device with: strata enrollment derive --group-key-file <file> <deviceId>`);
      return 0;
    }
    case "enable": case "disable": {
      if (!name) break;
      const g = (await call("PUT", `${ENROLLMENTS_PATH}/${encodeURIComponent(name)}`, { status: verb === "enable" ? "enabled" : "disabled" })) as EnrollmentGroup;
      out.info(`enrollment group ${g.name} ${g.status}`);
      return 0;
    }
    case "remove": {
      if (!name) break;
      await call("DELETE", `${ENROLLMENTS_PATH}/${encodeURIComponent(name)}`);
      out.info(`enrollment group ${name} removed (gateways made from it stay registered)`);
      return 0;
    }
    case "list": {
      const { groups } = (await call("GET", ENROLLMENTS_PATH)) as { groups: EnrollmentSummary[] };
      if (groups.length === 0) out.info("no enrollment groups");
      for (const g of groups) out.info(`${g.name.padEnd(24)} ${g.status.padEnd(8)} ${(g.edge ? "gateways" : "devices").padEnd(8)} ${g.parent ? `under ${g.parent}` : "where they come through"}`);
      return 0;
    }
  }
  out.error(ENROLLMENT_USAGE);
  return 2;
}
