import type { Kv } from "../../core/index.js";

/** A persistent (clean=false) session: the filters a device subscribed to, with their granted QoS. */
export interface StoredSession {
  subscriptions: Array<{ topic: string; qos: 0 | 1 }>;
  updatedAt: number;
}

/** The store namespace holding sessions (`store.kv("mqtt-sessions")`), keyed by identity id. */
export const SESSIONS_NAMESPACE = "mqtt-sessions";

/**
 * clean=false sessions kept in the durable store, so a device's subscriptions survive a gateway restart.
 * Queued C2D messages need nothing here: the hub keeps them durably until the device takes them.
 */
export class SessionStore {
  constructor(private readonly kv: Kv<StoredSession>) {}

  async load(id: string): Promise<StoredSession | undefined> {
    return this.kv.get(id);
  }

  /** Durable when it resolves: the SUBACK goes out after it. */
  async save(id: string, subscriptions: StoredSession["subscriptions"]): Promise<void> {
    if (subscriptions.length === 0) return this.kv.del(id);
    return this.kv.put(id, { subscriptions, updatedAt: Date.now() });
  }

  /** [MQTT-3.1.2-6] a clean=true CONNECT discards any previous session. */
  async drop(id: string): Promise<void> {
    if ((await this.kv.get(id)) !== undefined) await this.kv.del(id);
  }
}
