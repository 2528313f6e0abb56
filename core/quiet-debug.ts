/**
 * Disabled `debug` loggers that cost nothing per call.
 *
 * mqtt-packet, aedes, MQTT.js and rhea trace every packet and frame through the `debug` package, a dozen calls
 * per message even when tracing is off. A disabled logger returns at once, but only after its `(...args)`
 * rest parameter has allocated an array: a fifth of everything a gateway allocated per message (sampling heap
 * profile, mqtt bench at 5k msg/s: 1,042 → 823 MB over the run), and young-generation garbage is what the
 * collector's pauses are made of.
 *
 * So, when DEBUG is not set at start, `require("debug")(namespace)` returns a thin function that checks the
 * real logger's `enabled` first and only then forwards its arguments; V8 elides `arguments` forwarded through
 * `apply` in optimized code. Everything else (`enabled`, `namespace`, `extend`, `debug.enable(…)` at run time)
 * reads through to the real logger, so turning tracing on later still works. With DEBUG set, nothing changes.
 *
 * Imported first by core's entry points, before any plugin or library that creates loggers.
 */
type DebugFn = ((...args: unknown[]) => void) & { enabled: boolean };
type CreateDebug = ((namespace: string) => DebugFn) & Record<string, unknown>;

const QUIET = Symbol.for("strata.quiet-debug");

function quieten(): void {
  if (process.env.DEBUG) return;
  let path: string;
  try {
    path = require.resolve("debug");
  } catch {
    return; // nothing here uses it
  }
  const createDebug = require(path) as CreateDebug;
  if (createDebug[QUIET as unknown as string]) return;
  const quiet = function (this: unknown, namespace: string): DebugFn {
    const real = createDebug(namespace);
    const fn = function (this: unknown) {
      if (!real.enabled) return;
      // eslint-disable-next-line prefer-rest-params
      return (real as (...a: unknown[]) => void).apply(this, arguments as unknown as unknown[]);
    } as unknown as DebugFn;
    Object.setPrototypeOf(fn, real);
    return fn;
  } as unknown as CreateDebug;
  Object.setPrototypeOf(quiet, createDebug);
  Object.defineProperty(quiet, QUIET, { value: true });
  const cached = require.cache[path];
  if (cached) cached.exports = quiet;
}

quieten();
