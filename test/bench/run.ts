/**
 * Benchmark dispatcher: `node dist/test/bench/run.js <scenario> [args…]` (or `npm run bench -- <scenario>`).
 * Each scenario is a module exporting `run(args)`; add yours to SCENARIOS (mqtt, chain, …).
 */
// First, before MQTT.js and rhea create their loggers: disabled `debug` calls allocate nothing (core/quiet-debug.ts),
// in the load generator as in a gateway the benches fork from here.
import "../../core/quiet-debug.js";

export interface BenchModule {
  run(args: string[]): Promise<void>;
}

export const SCENARIOS: Record<string, () => Promise<BenchModule>> = {
  store: () => import("./store.bench.js"),
  mqtt: () => import("./mqtt.bench.js"),
  amqp: () => import("./amqp.bench.js"),
  registry: () => import("./registry.bench.js"),
  translation: () => import("./translation.bench.js"),
  blob: () => import("./blob.bench.js"),
  hop: () => import("./hop.bench.js"),
  chain: () => import("./chain.bench.js"),
};

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  const load = name ? SCENARIOS[name] : undefined;
  if (!load) {
    process.stderr.write(`usage: node dist/test/bench/run.js <scenario> [args]\nscenarios: ${Object.keys(SCENARIOS).join(", ")}\n`);
    process.exit(2);
  }
  await (await load()).run(args);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
