// C2D for polling devices: the hub pushes a message (the link's deliverC2D waits here), the device takes it
// with GET (locked under an ETag), then completes, rejects or abandons it. Locks expire lazily on the next
// GET (no timers), as IoT Hub's lock timeout does.
import { randomUUID } from "node:crypto";
import { DeviceReply, type CloudMessage } from "../../core/index.js";

interface Entry {
  message: CloudMessage;
  etag?: string;
  lockedUntil: number;
  deliveries: number;
  settle(outcome: "complete" | "reject" | "abandon"): void;
}

export class Outbox {
  private readonly byDevice = new Map<string, Entry[]>();

  /** Waits for the device to settle `message`: resolves on complete/reject, rejects on abandon (the hub re-queues it). */
  offer(deviceId: string, message: CloudMessage, signal: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const list = this.byDevice.get(deviceId) ?? [];
      this.byDevice.set(deviceId, list);
      const onAbort = (): void => entry.settle("abandon");
      const entry: Entry = {
        message, lockedUntil: 0, deliveries: 0,
        settle: (outcome) => {
          signal.removeEventListener("abort", onAbort);
          const i = list.indexOf(entry);
          if (i >= 0) list.splice(i, 1);
          if (list.length === 0 && this.byDevice.get(deviceId) === list) this.byDevice.delete(deviceId);
          if (outcome === "complete") resolve(undefined);
          else if (outcome === "reject") resolve(new DeviceReply(400, null));
          else reject(new Error("abandoned by the device"));
        },
      };
      if (signal.aborted) return reject(new Error("stopping"));
      signal.addEventListener("abort", onAbort, { once: true });
      list.push(entry);
    });
  }

  /** The next message not locked (or whose lock expired), now locked under a fresh ETag. */
  take(deviceId: string, lockMs: number, now = Date.now()): { message: CloudMessage; etag: string; deliveries: number } | undefined {
    const entry = this.byDevice.get(deviceId)?.find((e) => e.lockedUntil <= now);
    if (!entry) return undefined;
    entry.etag = randomUUID();
    entry.lockedUntil = now + lockMs;
    entry.deliveries++;
    return { message: entry.message, etag: entry.etag, deliveries: entry.deliveries };
  }

  /** Settles the message locked under `etag`; false when no such lock is held (lost or never given). */
  settle(deviceId: string, etag: string, outcome: "complete" | "reject" | "abandon", now = Date.now()): boolean {
    const entry = this.byDevice.get(deviceId)?.find((e) => e.etag === etag && e.lockedUntil > now);
    if (!entry) return false;
    entry.settle(outcome);
    return true;
  }

  /** Abandons everything (stop): the hub keeps the messages queued. */
  clear(): void {
    for (const list of [...this.byDevice.values()]) for (const e of [...list]) e.settle("abandon");
    this.byDevice.clear();
  }
}
