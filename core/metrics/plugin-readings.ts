import type { Metrics } from "./types.js";

const slots = new WeakMap<Metrics, Map<string, { source?: () => unknown }>>();

/**
 * A plugin's collect-on-scrape instruments, defined once per gateway registry under `key`: `define` gets a
 * reader of the plugin's current stats (undefined while it is stopped) and registers gaugeFn/counterFn
 * with it. Returns the function that binds the source: a plugin stopped and started again rebinds it
 * instead of registering its metrics twice, which the registry refuses.
 */
export function pluginReadings<S>(metrics: Metrics, key: string, define: (read: () => S | undefined) => void): (source: (() => S) | undefined) => void {
  let byKey = slots.get(metrics);
  if (!byKey) slots.set(metrics, (byKey = new Map()));
  let slot = byKey.get(key);
  if (!slot) {
    const made: { source?: () => unknown } = {};
    byKey.set(key, (slot = made));
    define(() => made.source?.() as S | undefined);
  }
  const bound = slot;
  return (source) => {
    if (source) bound.source = source;
    else delete bound.source;
  };
}
