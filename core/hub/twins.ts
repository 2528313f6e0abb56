import type { IdentityId } from "../message.js";
import { splitIdentityId } from "../message.js";
import type { Kv } from "../store/types.js";
import type { Twin, TwinProperties } from "./types.js";
import { KeyedSerial } from "./keyed-serial.js";

/**
 * Twins kept durably in the store, one record per identity. Updates to one twin are serialised so that
 * versions never race; a patch is merged as IoT Hub merges it (a null value deletes the key).
 */
export class TwinStore {
  private readonly serials = new KeyedSerial<IdentityId>();

  constructor(private readonly kv: Kv<Twin>) {}

  async get(id: IdentityId): Promise<Twin> {
    return (await this.kv.get(id)) ?? emptyTwin(id);
  }

  async remove(id: IdentityId): Promise<void> {
    await this.serials.run(id, () => this.kv.del(id));
  }

  /** Apply `change` to the twin and persist it; resolves with the stored twin. */
  update(id: IdentityId, change: (twin: Twin) => void): Promise<Twin> {
    return this.serials.run(id, async () => {
      const twin = await this.get(id);
      change(twin);
      twin.version += 1;
      await this.kv.put(id, twin);
      return twin;
    });
  }
}

export function emptyTwin(id: IdentityId): Twin {
  const { deviceId, moduleId } = splitIdentityId(id);
  return {
    deviceId,
    ...(moduleId ? { moduleId } : {}),
    version: 1,
    tags: {},
    properties: { desired: { $version: 1 }, reported: { $version: 1 } },
  };
}

/** Merge a patch into properties as IoT Hub does: objects merge recursively, null deletes, `$`-keys are ignored. */
export function mergePatch(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith("$")) continue;
    if (value === null) delete target[key];
    else if (isPlainObject(value)) {
      const current = target[key];
      const into = isPlainObject(current) ? current : {};
      mergePatch(into, value);
      target[key] = into;
    } else target[key] = value;
  }
}

/** A desired or reported patch with its new `$version`, as sent to devices. */
export function versioned(patch: Record<string, unknown>, version: number): TwinProperties {
  return { ...patch, $version: version };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
