// Commands on their way to CoAP devices. A CoAP device is a client: the gateway cannot open a connection
// to it, so a command reaches it in one of two ways (whichever comes first):
//   - it observes `/commands/{id}` (RFC 7641): each command is a notification at once;
//   - it asks: the command is queued and goes out in the response to its next POST `/telemetry/{id}` or
//     GET `/commands/{id}` (a sleepy device that wakes, reports and listens for a moment).
// A method then waits for the device's answer, `POST /commands/{id}/{rid}`.
import type { CoapCommand } from "./converters.js";

/** An observation of `/commands/{id}`: `notify` sends one notification; false when it can no longer. */
export interface CommandObserver {
  notify(cmd: CoapCommand): boolean;
}

export interface MailboxOptions {
  maxQueued: number;
  commandTimeoutMs: number;
  methodTimeoutMs: number;
}

export interface DeviceAnswer {
  status: number;
  payload: unknown;
}

interface Queued {
  cmd: CoapCommand;
  delivered(): void;
  failed(err: Error): void;
}

interface Waiting {
  resolve(answer: DeviceAnswer): void;
  reject(err: Error): void;
}

export class CommandMailbox {
  private readonly observers = new Map<string, Set<CommandObserver>>();
  private readonly queues = new Map<string, Queued[]>();
  private readonly answers = new Map<string, Waiting>();
  private nextRid = 1;
  private closedWith: Error | undefined;

  constructor(private readonly o: MailboxOptions) {}

  /** Registers an observer of the device's commands; queued commands go to it at once. Returns the unobserve. */
  observe(deviceId: string, observer: CommandObserver): () => void {
    let set = this.observers.get(deviceId);
    if (!set) this.observers.set(deviceId, (set = new Set()));
    set.add(observer);
    for (const q of this.takeQueued(deviceId)) {
      if (observer.notify(q.cmd)) q.delivered();
      else this.enqueue(deviceId, q);
    }
    return () => {
      set.delete(observer);
      if (set.size === 0 && this.observers.get(deviceId) === set) this.observers.delete(deviceId);
    };
  }

  observed(deviceId: string): boolean {
    return (this.observers.get(deviceId)?.size ?? 0) > 0;
  }

  /** Commands waiting for the device (they count as delivered now: the caller sends them in a response). */
  take(deviceId: string): CoapCommand[] {
    return this.takeQueued(deviceId).map((q) => {
      q.delivered();
      return q.cmd;
    });
  }

  /** Hands a command to the device: resolves when notified or fetched, rejects after the command timeout. */
  deliver(deviceId: string, cmd: CoapCommand, signal: AbortSignal, timeoutMs = this.o.commandTimeoutMs): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (signal.aborted) return Promise.reject(asError(signal.reason));
    for (const obs of this.observers.get(deviceId) ?? []) if (obs.notify(cmd)) return Promise.resolve();
    const queue = this.queues.get(deviceId) ?? [];
    if (queue.length >= this.o.maxQueued) {
      return Promise.reject(new Error(`${deviceId} already has ${queue.length} undelivered commands (plugins.coap.max_queued_commands); it must observe /commands/${deviceId} or poll it`));
    }
    return new Promise<void>((resolve, reject) => {
      const entry: Queued = {
        cmd,
        delivered: () => settle(),
        failed: (err) => settle(err),
      };
      const timer = setTimeout(() => {
        this.remove(deviceId, entry);
        settle(new Error(`${deviceId} did not observe or poll /commands/${deviceId} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => {
        this.remove(deviceId, entry);
        settle(asError(signal.reason));
      };
      const settle = (err?: Error): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.enqueue(deviceId, entry);
    });
  }

  /** A direct method: delivered like any command, then waits for `POST /commands/{id}/{rid}`. */
  async call(deviceId: string, method: string, payload: unknown, signal: AbortSignal): Promise<DeviceAnswer> {
    const rid = this.nextRid++;
    const key = `${deviceId}\u0000${rid}`;
    const timeout = AbortSignal.any([signal, AbortSignal.timeout(this.o.methodTimeoutMs)]);
    const answer = new Promise<DeviceAnswer>((resolve, reject) => {
      const onAbort = (): void => finish(asError(timeout.reason, `no answer from ${deviceId} within ${this.o.methodTimeoutMs} ms`));
      const finish = (err?: Error, value?: DeviceAnswer): void => {
        timeout.removeEventListener("abort", onAbort);
        this.answers.delete(key);
        if (err) reject(err);
        else resolve(value!);
      };
      timeout.addEventListener("abort", onAbort, { once: true });
      this.answers.set(key, { resolve: (v) => finish(undefined, v), reject: (e) => finish(e) });
    });
    answer.catch(() => undefined); // observed below; a delivery failure must not leave it unhandled
    try {
      await this.deliver(deviceId, { rid, method, payload }, timeout, this.o.methodTimeoutMs);
    } catch (err) {
      this.answers.get(key)?.reject(err as Error);
    }
    return answer;
  }

  /** The device's answer to method `rid`; false when no method waits for it (late, or never asked). */
  answer(deviceId: string, rid: number, reply: DeviceAnswer): boolean {
    const waiting = this.answers.get(`${deviceId}\u0000${rid}`);
    waiting?.resolve(reply);
    return waiting !== undefined;
  }

  /** Fails everything pending (stop). */
  close(reason: Error): void {
    this.closedWith = reason;
    for (const id of [...this.queues.keys()]) for (const q of this.takeQueued(id)) q.failed(reason);
    for (const w of [...this.answers.values()]) w.reject(reason);
    this.observers.clear();
  }

  private enqueue(deviceId: string, entry: Queued): void {
    const queue = this.queues.get(deviceId);
    if (queue) queue.push(entry);
    else this.queues.set(deviceId, [entry]);
  }

  private takeQueued(deviceId: string): Queued[] {
    const queue = this.queues.get(deviceId) ?? [];
    this.queues.delete(deviceId);
    return queue;
  }

  private remove(deviceId: string, entry: Queued): void {
    const queue = this.queues.get(deviceId);
    if (!queue) return;
    const i = queue.indexOf(entry);
    if (i >= 0) queue.splice(i, 1);
    if (queue.length === 0) this.queues.delete(deviceId);
  }
}

function asError(reason: unknown, fallback = "aborted"): Error {
  if (reason instanceof Error && reason.name !== "TimeoutError") return reason;
  return new Error(reason instanceof Error && reason.name === "TimeoutError" ? fallback : String(reason ?? fallback));
}
