// The first-boot driver's state file: which step it reached, so a reboot resumes instead of starting over.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { StrataError } from "../errors.js";
import type { ProvisionAnswer } from "./types.js";

/** In order: located the file → sent the registration → got the answer → installed the files → done. */
export const PROVISION_STEPS = ["located", "registering", "registered", "installed", "done"] as const;
export type ProvisionStep = (typeof PROVISION_STEPS)[number];

export interface ProvisionState {
  version: 1;
  step: ProvisionStep;
  /** The provisioning file and its sha256 (a different file later is refused, not silently applied). */
  source: string;
  sha256: string;
  deviceId: string;
  attestation: string;
  /** Registration requests sent so far (each one idempotent at the root). */
  attempts: number;
  startedAt: string;
  updatedAt: string;
  /** The last failure, with the fix in it. */
  lastError?: string;
  /** Kept between "registered" and "installed" only: it holds keys (the file is mode 0600). */
  answer?: ProvisionAnswer;
  /** The config installed (step installed and after). */
  configFile?: string;
  parent?: string;
}

export function readState(path: string): ProvisionState | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new StrataError("STRATA_PROVISION_STATE", `provisioning state ${path} cannot be read (${(err as NodeJS.ErrnoException).code}); check its owner is the strata user`, { cause: err });
  }
  try {
    const s = JSON.parse(text) as ProvisionState;
    if (s.version !== 1 || !PROVISION_STEPS.includes(s.step)) throw new Error(`unknown version ${s.version} or step ${s.step}`);
    return s;
  } catch (err) {
    throw new StrataError("STRATA_PROVISION_STATE", `provisioning state ${path} is damaged (${(err as Error).message}); remove it to provision again from the start (registration is idempotent)`, { cause: err });
  }
}

/** Atomic and durable: write a temp file, fsync, rename (a power cut leaves the old or the new state, never half). */
export function writeState(path: string, state: ProvisionState): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, JSON.stringify({ ...state, updatedAt: new Date().toISOString() }, null, 2) + "\n");
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dfd = openSync(dirname(path), "r");
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // fsync of a directory is not supported everywhere; the rename is still atomic
  }
}
