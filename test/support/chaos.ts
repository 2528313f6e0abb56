// Chaos helpers for hierarchy tests: a seeded random source (the same faults in the same order on every CI
// run), MQTT.js leaves that keep their QoS 1 sends across gateway crashes and count only what was
// acknowledged, and the check of what the root received against what the leaves had acknowledged.
import { readFileSync } from "node:fs";
import mqtt, { type MqttClient } from "mqtt";
import { signSas } from "../../core/identity/sas.js";

/** mulberry32: a small seeded PRNG, so a failing chaos run can be replayed with the same seed. */
export function seededRandom(seed: number): { next(): number; int(min: number, max: number): number; pick<T>(items: readonly T[]): T } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}

export interface MqttLeafOptions {
  id: string;
  hub: string;
  key: string;
  /** The leaf's gateway address (MQTT over TLS on 8883). */
  host: string;
  port?: number;
  caPem: string;
}

/**
 * A leaf on MQTT.js with a persistent session (clean=false) and automatic reconnects: a QoS 1 publish not yet
 * acknowledged when its gateway dies stays in MQTT.js's outgoing store and is sent again after the reconnect
 * (so the root may see it twice: the first copy was on disk, the PUBACK was lost). Only PUBACKed seqs count.
 */
export class MqttLeaf {
  /** Seqs in the order they were acknowledged. */
  readonly acked: number[] = [];
  reconnects = 0;
  private constructor(readonly id: string, readonly client: MqttClient) {}

  static async open(o: MqttLeafOptions): Promise<MqttLeaf> {
    const client = await mqtt.connectAsync(`mqtts://${o.host}:${o.port ?? 8883}`, {
      clientId: o.id,
      clean: false,
      protocolVersion: 4,
      keepalive: 30,
      reconnectPeriod: 250,
      connectTimeout: 5000,
      ca: o.caPem,
      username: `${o.hub}/${o.id}/?api-version=2021-04-12`,
      password: signSas({ resource: `${o.hub}/devices/${o.id}`, key: o.key, expirySecs: Math.floor(Date.now() / 1000) + 3 * 3600 }),
    });
    const leaf = new MqttLeaf(o.id, client);
    client.on("reconnect", () => leaf.reconnects++);
    // Connection errors while its gateway is down are the point of the test; MQTT.js retries on its own.
    client.on("error", () => {});
    return leaf;
  }

  /**
   * Publishes seqs `from`..`to-1` (messageId `{id}-{n}`, user property `seq`), at most `window` unacknowledged
   * at once; resolves when every one was acknowledged. `onAck` sees each acknowledgement as it comes.
   */
  send(from: number, to: number, window: number, onAck: () => void = () => {}): Promise<void> {
    const topic = `devices/${this.id}/messages/events/${encodeURIComponent("$.mid")}=${this.id}-`;
    return new Promise((resolve, reject) => {
      let next = from;
      let inflight = 0;
      const pump = () => {
        while (inflight < window && next < to) {
          const n = next++;
          inflight++;
          this.client.publish(`${topic}${n}&seq=${n}`, JSON.stringify({ n }), { qos: 1 }, (err) => {
            inflight--;
            if (err) return reject(new Error(`${this.id}: publish ${n} failed: ${err.message}`));
            this.acked.push(n);
            onAck();
            if (next >= to && inflight === 0) resolve();
            else pump();
          });
        }
      };
      if (from >= to) resolve();
      else pump();
    });
  }

  close(): Promise<void> {
    return this.client.endAsync(true).then(() => undefined, () => undefined);
  }
}

export interface RootRecord {
  deviceId: string;
  messageId: string | null;
  enqueuedTime?: string;
  properties: Record<string, string>;
}

export interface DeliveryReport {
  /** Acknowledged seqs that never reached the root, per device. */
  missing: Map<string, number[]>;
  /** Per device: first arrivals that came after a higher seq (per-device order broken). */
  outOfOrder: Map<string, number[]>;
  /** Extra copies of a message the leaf sent again after a lost PUBACK (new Strata id at its gateway). */
  deviceResends: number;
  /** Extra copies with the same origin timestamp: one Strata message delivered twice (hop dedup failed). */
  hopDuplicates: string[];
  /** Records at the root inside the checked seq range. */
  received: number;
}

/**
 * What the root received (`records`, in arrival order) against what each leaf had acknowledged, for seqs in
 * [from, to). Every acknowledged seq must arrive, first arrivals in ascending seq per device.
 */
export function checkDelivery(records: readonly RootRecord[], acked: ReadonlyMap<string, readonly number[]>, from: number, to: number): DeliveryReport {
  const missing = new Map<string, number[]>();
  const outOfOrder = new Map<string, number[]>();
  const hopDuplicates: string[] = [];
  let deviceResends = 0;
  let received = 0;
  const firstSeen = new Map<string, Set<number>>();
  const highest = new Map<string, number>();
  const copies = new Map<string, Set<string>>();
  for (const r of records) {
    const seq = Number(r.properties.seq);
    if (!(seq >= from && seq < to)) continue;
    received++;
    const seen = firstSeen.get(r.deviceId) ?? new Set<number>();
    firstSeen.set(r.deviceId, seen);
    const key = `${r.deviceId}:${seq}`;
    const stamps = copies.get(key) ?? new Set<string>();
    copies.set(key, stamps);
    const stamp = r.enqueuedTime ?? "";
    if (seen.has(seq)) {
      if (stamps.has(stamp)) hopDuplicates.push(key);
      else deviceResends++;
      stamps.add(stamp);
      continue;
    }
    seen.add(seq);
    stamps.add(stamp);
    if (seq < (highest.get(r.deviceId) ?? -1)) {
      const list = outOfOrder.get(r.deviceId) ?? [];
      list.push(seq);
      outOfOrder.set(r.deviceId, list);
    }
    highest.set(r.deviceId, Math.max(seq, highest.get(r.deviceId) ?? -1));
  }
  for (const [device, seqs] of acked) {
    const seen = firstSeen.get(device) ?? new Set<number>();
    const lost = seqs.filter((n) => n >= from && n < to && !seen.has(n));
    if (lost.length) missing.set(device, lost);
  }
  return { missing, outOfOrder, deviceResends, hopDuplicates, received };
}

/** A short, readable summary of a failed check (the first few seqs per device). */
export function describeDelivery(r: DeliveryReport): string {
  const head = (m: Map<string, number[]>) => [...m].map(([d, s]) => `${d}: ${s.length} (${s.slice(0, 5).join(",")}${s.length > 5 ? ",…" : ""})`).join("; ");
  return `received ${r.received}, missing [${head(r.missing)}], out of order [${head(r.outOfOrder)}], ` +
    `device resends ${r.deviceResends}, hop duplicates ${r.hopDuplicates.length} (${r.hopDuplicates.slice(0, 5).join(",")})`;
}

/** Resident set size of a process in MiB (from /proc/<pid>/status VmRSS). */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU seconds (user + system) a process used so far, from /proc/<pid>/stat (fields 14 and 15, in clock ticks). */
export function cpuSeconds(pid: number, ticksPerSecond = 100): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis are space-separated.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}
