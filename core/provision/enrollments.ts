// Enrollment groups at the root, in the store's `enrollment-groups` namespace.
import { StrataError } from "../errors.js";
import { generateKey } from "../identity/sas.js";
import type { Kv } from "../store/types.js";
import type { EnrollmentGroup, EnrollmentSummary } from "./types.js";

/** Group names: what fits in a URL path segment and a TOML value without quoting surprises. */
export const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface EnrollmentInput {
  primaryKey?: string;
  secondaryKey?: string;
  status?: EnrollmentGroup["status"];
  edge?: boolean;
  parent?: string | null;
}

export class EnrollmentGroups {
  constructor(private readonly kv: Kv<EnrollmentGroup>) {}

  get(name: string): Promise<EnrollmentGroup | undefined> {
    return this.kv.get(name);
  }

  async list(): Promise<EnrollmentGroup[]> {
    const out: EnrollmentGroup[] = [];
    for await (const [, g] of this.kv.entries()) out.push(g);
    return out;
  }

  /** Creates or updates a group; keys are generated when a new group gives none, kept when an update gives none. */
  async put(name: string, input: EnrollmentInput): Promise<EnrollmentGroup> {
    if (!GROUP_NAME.test(name)) {
      throw new StrataError("STRATA_PROVISION_GROUP_NAME", `enrollment group name "${name}" is invalid: use 1–64 of A-Z a-z 0-9 . _ - starting with a letter or digit`);
    }
    for (const k of [input.primaryKey, input.secondaryKey]) {
      if (k !== undefined && Buffer.from(k, "base64").length < 16) {
        throw new StrataError("STRATA_PROVISION_GROUP_KEY", `enrollment group ${name}: a key must be base64 of at least 16 bytes; omit it to have one generated`);
      }
    }
    const old = await this.kv.get(name);
    const parent = input.parent === null ? undefined : (input.parent ?? old?.parent);
    const group: EnrollmentGroup = {
      name,
      primaryKey: input.primaryKey ?? old?.primaryKey ?? generateKey(),
      secondaryKey: input.secondaryKey ?? old?.secondaryKey ?? generateKey(),
      status: input.status ?? old?.status ?? "enabled",
      edge: input.edge ?? old?.edge ?? true,
      ...(parent !== undefined ? { parent } : {}),
      createdAt: old?.createdAt ?? Date.now(),
    };
    await this.kv.put(name, group);
    return group;
  }

  async remove(name: string): Promise<boolean> {
    const old = await this.kv.get(name);
    if (!old) return false;
    await this.kv.del(name);
    return true;
  }
}

export function summary(g: EnrollmentGroup): EnrollmentSummary {
  const { primaryKey: _p, secondaryKey: _s, ...rest } = g;
  return rest;
}
