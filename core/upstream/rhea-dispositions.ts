/**
 * A fix for rhea 3.0.5's receiver dispositions. rhea batches the settlements made in one tick into ranges
 * (`write_dispositions` in lib/session.js), but it compares outcomes only once a range holds two deliveries:
 * an *accept* followed in the same tick by a *reject* or *release* goes out as one "accepted first..last".
 * For a gateway that accepts only after a durable write, that turns a refusal into an acceptance and the
 * sender (a child gateway, a device) drops a message that was never stored.
 *
 * The fix splits the deliveries rhea is about to settle into runs that its range logic handles correctly
 * (consecutive accepts; anything else alone) and lets rhea write each run in turn. It patches the shared
 * prototype once per process; the AMQP head and the upstream link both call it.
 */
// rhea's internals have no types; only the shapes used here are declared.
interface RheaDelivery {
  state?: { descriptor?: { value?: unknown } };
}
interface RheaIncoming {
  updated: RheaDelivery[];
  process(session: unknown): void;
}

const ACCEPTED = 0x24;
let applied = false;

export function patchRheaDispositions(): void {
  if (applied) return;
  applied = true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Session = require("rhea/lib/session.js") as new (connection: unknown, channel: number) => { incoming: RheaIncoming };
  const incoming = Object.getPrototypeOf(new Session(undefined, 0).incoming) as RheaIncoming;
  const original = incoming.process;
  incoming.process = function process(this: RheaIncoming, session: unknown): void {
    const all = this.updated;
    if (all.length < 2) return original.call(this, session);
    for (const run of settlementRuns(all)) {
      this.updated = run;
      original.call(this, session);
    }
    this.updated = [];
  };
}

/** Consecutive accepted deliveries stay together; every other outcome is settled in a run of its own. */
export function settlementRuns<T extends RheaDelivery>(deliveries: readonly T[]): T[][] {
  const runs: T[][] = [];
  let current: T[] = [];
  for (const d of deliveries) {
    const accepted = d.state?.descriptor?.value === ACCEPTED;
    const last = current[current.length - 1];
    const lastAccepted = last?.state?.descriptor?.value === ACCEPTED;
    if (current.length > 0 && !(accepted && lastAccepted)) {
      runs.push(current);
      current = [];
    }
    current.push(d);
  }
  if (current.length) runs.push(current);
  return runs;
}

let buffersApplied = false;

/**
 * rhea allocates every encode buffer with Buffer.alloc: a zero-filled 1 KiB per message encoded (and again at
 * each doubling), ~5% of a forwarding gateway's CPU, measured. Buffer.allocUnsafe takes small ones from Node's
 * pool without zeroing. Safe for rhea 3.0.x: its Writer exposes only the bytes it wrote (toBuffer slices to
 * the write position), and every other caller (frame header, uuid, SASL responses) writes each byte it allocates.
 */
export function patchRheaBuffers(): void {
  if (buffersApplied) return;
  buffersApplied = true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const util = require("rhea/lib/util.js") as { allocate_buffer?: (size: number) => Buffer };
  if (typeof util.allocate_buffer === "function") util.allocate_buffer = (size) => Buffer.allocUnsafe(size);
}
