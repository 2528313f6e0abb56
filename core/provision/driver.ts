// First boot: read the provisioning file, register through the parent (forwarded to the root), install what the
// answer holds. Every step is recorded in a state file first, so a reboot at any point resumes.
import { chmodSync, copyFileSync, mkdirSync, readFileSync } from "node:fs";
import https from "node:https";
import { isIP } from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import { childInstall } from "../cli/child.js";
import { readSecret } from "../config/secret.js";
import { StrataError } from "../errors.js";
import type { Logger } from "../log.js";
import { deriveDeviceKey, registrationToken, x509Proof } from "./derive.js";
import { readProvisioningFile, type ProvisioningFile } from "./file.js";
import { readState, writeState, type ProvisionState, type ProvisionStep } from "./state.js";
import { PROVISION_PATH, type ProvisionAnswer, type ProvisionRequest } from "./types.js";

export interface DriverOptions {
  /** The provisioning file (found by locateProvisioningFile). */
  file: string;
  stateFile: string;
  logger: Logger;
  /** Give up retrying an unreachable parent or root after this long. Default: keep trying. */
  retryForMs?: number;
  /** For tests: stop (as if killed) once this step is recorded. */
  stopAfter?: ProvisionStep;
  signal?: AbortSignal;
  /** Progress lines for a person (the CLI prints them). */
  progress?: (line: string) => void;
}

export interface DriverResult {
  state: ProvisionState;
  /** Already done before this run: nothing was sent. */
  already: boolean;
}

/** Runs (or resumes) provisioning; rejects with a StrataError naming the fix when the root refuses. */
export async function runProvisioning(o: DriverOptions): Promise<DriverResult> {
  const say = o.progress ?? (() => {});
  const { file, sha256 } = readProvisioningFile(o.file);
  let state = readState(o.stateFile);
  if (state?.step === "done") {
    say(`already provisioned as ${state.deviceId} (${state.configFile})`);
    return { state, already: true };
  }
  if (state && (state.sha256 !== sha256 || state.deviceId !== file.device_id)) {
    throw new StrataError("STRATA_PROVISION_STATE", `provisioning state ${o.stateFile} belongs to another provisioning file (${state.source}, ${state.deviceId}); remove the state file to provision with ${file.source}`);
  }
  const now = new Date().toISOString();
  state ??= { version: 1, step: "located", source: file.source, sha256, deviceId: file.device_id, attestation: file.attestation.type, attempts: 0, startedAt: now, updatedAt: now };
  const save = (s: ProvisionState): ProvisionState => {
    writeState(o.stateFile, s);
    o.logger.info({ step: s.step, device: s.deviceId, attempts: s.attempts }, "provisioning step");
    if (o.stopAfter === s.step) throw new StrataError("STRATA_PROVISION_STOPPED", `stopped after step ${s.step} (test hook)`);
    return s;
  };
  if (state.step === "located") state = save(state);
  say(`provisioning ${file.device_id} (${file.attestation.type}) from ${file.source}`);

  if (state.step === "located" || state.step === "registering") {
    const { answer, state: sent } = await registerWithRetry(file, o, state, save, say);
    state = save({ ...sent, step: "registered", answer, parent: answer.bundle?.parent ?? answer.record.parent, lastError: undefined } as ProvisionState);
  }
  if (state.step === "registered") {
    const configFile = install(file, state.answer!);
    say(`installed ${configFile}`);
    const { answer: _dropped, ...rest } = state;
    state = save({ ...rest, step: "installed", configFile });
  }
  if (state.step === "installed") state = save({ ...state, step: "done" });
  say(`provisioned ${state.deviceId} under ${state.parent ?? "?"}`);
  return { state, already: false };
}

function request(file: ProvisioningFile): ProvisionRequest {
  const a = file.attestation;
  const id = file.device_id;
  const gateway = {
    hostname: file.hostname,
    ...(file.address ? { address: file.address } : {}),
    data_dir: file.data_dir,
    ...(file.listen ? { listen: file.listen } : {}),
  };
  if (a.type === "x509") {
    return { registrationId: id, x509: x509Proof(file.hub, id, readFileSync(a.cert_file, "utf8"), readSecret(a.key_file, "attestation.key_file")), gateway, path: [] };
  }
  const key = deviceKey(file);
  return { registrationId: id, ...(a.type === "enrollment-group" ? { group: a.group } : {}), sas: registrationToken(file.hub, id, key), gateway, path: [] };
}

/** The key the gateway signs with: flashed (derived at the factory), or derived here from the group key. */
function deviceKey(file: ProvisioningFile): string {
  const a = file.attestation;
  if (a.type === "x509") throw new Error("unreachable");
  if (a.type === "enrollment-group" && a.group_key_file) return deriveDeviceKey(readSecret(a.group_key_file, "attestation.group_key_file"), file.device_id);
  return readSecret(a.key_file!, "attestation.key_file");
}

async function registerWithRetry(
  file: ProvisioningFile, o: DriverOptions, state0: ProvisionState,
  save: (s: ProvisionState) => ProvisionState, say: (line: string) => void,
): Promise<{ answer: ProvisionAnswer; state: ProvisionState }> {
  let state = state0;
  const deadline = o.retryForMs === undefined ? Infinity : Date.now() + o.retryForMs;
  const ca = readFileSync(file.parent.trust_bundle_file, "utf8");
  for (let wait = 500; ; wait = Math.min(wait * 2, 30_000)) {
    // Recorded before sending: a kill while the request is in flight is resumed by sending it again.
    state = save({ ...state, step: "registering", attempts: state.attempts + 1 });
    const p = file.parent;
    say(`registering with ${p.hostname} (${p.address ?? p.hostname}:${p.https_port}), attempt ${state.attempts}`);
    let res: { status: number; body: unknown } | undefined;
    let failure: string;
    try {
      res = await postJson({ host: p.address ?? p.hostname, port: p.https_port, hostname: p.hostname, ca, path: PROVISION_PATH, body: request(file), signal: o.signal });
      if (res.status === 200) return { answer: res.body as ProvisionAnswer, state };
      const message = (res.body as { message?: string } | undefined)?.message ?? JSON.stringify(res.body);
      failure = `${p.hostname} answered ${res.status}: ${message}`;
    } catch (err) {
      if (o.signal?.aborted) throw err;
      failure = `${p.hostname} cannot be reached: ${(err as Error).message}; check [parent] in the provisioning file and the network`;
    }
    state = { ...state, lastError: failure };
    writeState(o.stateFile, state);
    // A refusal (4xx but 408/429) is a decision: retrying the same request cannot change it.
    if (res && res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
      throw new StrataError("STRATA_PROVISION_REFUSED", `registration of ${file.device_id} refused: ${failure}`);
    }
    if (Date.now() + wait > deadline) throw new StrataError("STRATA_PROVISION_UNREACHABLE", `registration of ${file.device_id} failed: ${failure}`);
    o.logger.warn({ device: file.device_id, reason: failure, retryInMs: wait }, "provisioning retry");
    say(`  ${failure}; retrying in ${Math.round(wait / 1000)} s`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, wait);
      o.signal?.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
    });
    if (o.signal?.aborted) throw new StrataError("STRATA_PROVISION_STOPPED", "provisioning stopped (signal); it resumes on the next start");
  }
}

/** Writes the bundle into config_dir (config validated), plus the X.509 identity files. */
function install(file: ProvisioningFile, answer: ProvisionAnswer): string {
  if (!answer.bundle) throw new StrataError("STRATA_PROVISION_NO_BUNDLE", `the answer for ${file.device_id} holds no gateway bundle: the enrollment makes it a device, not a gateway (edge); fix the enrollment group at the root`);
  if (file.attestation.type === "x509") {
    // The config names these; they go in first so the config validates.
    for (const [from, to, mode] of [[file.attestation.cert_file, "identity-x509.cert.pem", 0o644], [file.attestation.key_file, "identity-x509.key.pem", 0o600]] as const) {
      const target = join(file.config_dir, to);
      mkdirSync(file.config_dir, { recursive: true, mode: 0o755 });
      copyFileSync(from, target);
      chmodSync(target, mode);
    }
  }
  return childInstall(answer.bundle, file.config_dir);
}

interface PostOptions { host: string; port: number; hostname: string; ca: string; path: string; body: unknown; signal?: AbortSignal; timeoutMs?: number }

/** A POST with no Authorization: the new gateway has no identity at its parent yet; the body carries the proof. */
function postJson(o: PostOptions): Promise<{ status: number; body: unknown }> {
  const payload = Buffer.from(JSON.stringify(o.body));
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: o.host, port: o.port, method: "POST", path: o.path, ca: o.ca, agent: false,
      servername: isIP(o.hostname) ? undefined : o.hostname,
      checkServerIdentity: (_h, cert) => tls.checkServerIdentity(o.hostname, cert),
      headers: { "Content-Type": "application/json", "Content-Length": payload.length, Accept: "application/json" },
      timeout: o.timeoutMs ?? 30_000,
      ...(o.signal ? { signal: o.signal } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown = text;
        try { body = text ? JSON.parse(text) : undefined; } catch { /* a proxy's page: keep the text */ }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${o.timeoutMs ?? 30_000} ms`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** One line for `strata check`: where provisioning stands (from the state file). */
export function provisionStatusLine(stateFile: string): { verdict: "ok" | "warn" | "fail"; what: string; detail: string } {
  let s: ProvisionState | undefined;
  try {
    s = readState(stateFile);
  } catch (err) {
    return { verdict: "fail", what: "provision", detail: (err as Error).message };
  }
  if (!s) return { verdict: "ok", what: "provision", detail: `no provisioning state (${stateFile}): not a factory-provisioned gateway, or first boot has not run` };
  if (s.step === "done") return { verdict: "ok", what: "provision", detail: `provisioned as ${s.deviceId} under ${s.parent ?? "?"} (${s.attestation}, ${s.attempts} request(s), ${s.updatedAt})` };
  return { verdict: s.lastError ? "fail" : "warn", what: "provision", detail: `step ${s.step} of ${s.deviceId} (${s.attempts} request(s))${s.lastError ? `: ${s.lastError}` : ""}; strata-firstboot.service resumes it (journalctl -u strata-firstboot)` };
}
