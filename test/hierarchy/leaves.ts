// Leaf devices for hierarchy tests: the unmodified Azure IoT device SDK over MQTT or AMQP (TLS).
import { Client, Message } from "azure-iot-device";
import { Amqp } from "azure-iot-device-amqp";
import { Mqtt } from "azure-iot-device-mqtt";

export type LeafTransport = "mqtt" | "amqp";

export interface Leaf {
  id: string;
  client: Client;
  /** Sends messages `from`..`to-1` (messageId `{id}-{n}`, property `seq`), `window` in flight at once; resolves when all are acknowledged. */
  send(from: number, to: number, window?: number): Promise<void>;
  close(): Promise<void>;
}

export async function openLeaf(id: string, connectionString: string, transport: LeafTransport, ca: string): Promise<Leaf> {
  const client = Client.fromConnectionString(connectionString, transport === "mqtt" ? Mqtt : Amqp);
  await client.setOptions({ ca }); // asynchronous: must finish before open() (spikes.md §2)
  await client.open();
  return {
    id,
    client,
    async send(from, to, window = 1) {
      let next = from;
      const worker = async () => {
        while (next < to) {
          const n = next++;
          const m = new Message(JSON.stringify({ n }));
          m.messageId = `${id}-${n}`;
          m.properties.add("seq", String(n));
          await client.sendEvent(m);
        }
      };
      await Promise.all(Array.from({ length: window }, worker));
    },
    close: () => client.close().then(() => undefined, () => undefined),
  };
}

/** Per device: message seqs in arrival order, and how often each messageId came. */
export function tally(records: readonly { deviceId: string; messageId: string | null; properties: Record<string, string> }[]) {
  const seqs = new Map<string, number[]>();
  const counts = new Map<string, number>();
  for (const r of records) {
    const list = seqs.get(r.deviceId) ?? [];
    list.push(Number(r.properties.seq));
    seqs.set(r.deviceId, list);
    if (r.messageId) counts.set(r.messageId, (counts.get(r.messageId) ?? 0) + 1);
  }
  const duplicates = [...counts].filter(([, c]) => c > 1).map(([id]) => id);
  return { seqs, counts, duplicates };
}
