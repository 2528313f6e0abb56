/** Small pieces every bench shares: flags, percentiles, and the load generator's self-describing payload. */

/** `--name value` from the bench's arguments, or the default. */
export function arg(args: readonly string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
}

/** The p-th percentile (nearest rank) of unsorted values; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Telemetry payloads of the MQTT load generators. */
export const PAYLOAD_BYTES = 256;

/** `device:seq:sentAt` padded to 256 bytes: a subscriber recovers id and send time from the payload alone. */
export function payload(device: number, seq: number): Buffer {
  const head = `${device}:${seq}:${performance.now().toFixed(3)}:`;
  const buf = Buffer.alloc(PAYLOAD_BYTES, 0x2e);
  buf.write(head, 0, "latin1");
  return buf;
}
