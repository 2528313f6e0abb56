/**
 * Bench `store`: durable appends/s and per-append latency through LevelStore.enqueue (the whole path:
 * dedup, quota, encoding, group commit, queue index) with 1, 10 and 100 concurrent writers, beside the
 * same store with sync:false in the same run. Target: >= 50k durable appends/s with 100 writers.
 *
 *   node dist/test/bench/run.js store [--seconds 2] [--body 300] [--writers 1,10,100]
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../core/log.js";
import type { Message } from "../../core/message.js";
import { LevelStore } from "../../core/store/index.js";
import { encodeRecord } from "../../core/store/codec.js";

interface Result { writers: number; sync: boolean; appends: number; perSec: number; p50: number; p99: number; batch: number }

function arg(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : dflt;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0;
}

async function runCase(writers: number, sync: boolean, seconds: number, bodyBytes: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), "strata-bench-store-"));
  const store = new LevelStore({
    path: join(dir, "db"), gatewayId: "bench", quotaBytes: 8 * 1024 ** 3, logger: silentLogger(), sync, sweepIntervalMs: 0,
  });
  await store.open();
  const body = Buffer.alloc(bodyBytes, 0x61);
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  const writer = async (w: number): Promise<void> => {
    for (let k = 0; performance.now() < end; k++) {
      const now = Date.now();
      const m: Message = {
        id: store.nextId(), origin: "bench", source: `dev${w}`, enqueuedTime: now, deadline: now + 7200_000,
        priority: w % 10, body, properties: { k: String(k) }, systemProperties: { contentType: "application/json" },
      };
      const t0 = performance.now();
      await store.enqueue(m, ["$upstream"]);
      latencies.push(performance.now() - t0);
    }
  };
  const started = performance.now();
  const batches0 = store.batchesWritten;
  await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
  const elapsed = (performance.now() - started) / 1000;
  const batches = store.batchesWritten - batches0;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  const sorted = Float64Array.from(latencies).sort();
  return {
    writers, sync, appends: latencies.length, perSec: latencies.length / elapsed,
    p50: percentile(sorted, 50), p99: percentile(sorted, 99), batch: latencies.length / Math.max(1, batches),
  };
}

function encodeCost(bodyBytes: number): number {
  const now = Date.now();
  const m: Message = {
    id: "bench:1", origin: "bench", source: "dev1", enqueuedTime: now, deadline: now + 7200_000, priority: 5,
    body: Buffer.alloc(bodyBytes, 0x61), properties: { k: "1", alert: "yes" }, systemProperties: { contentType: "application/json" },
  };
  const n = 200_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) encodeRecord(m, now);
  return ((performance.now() - t0) * 1000) / n;
}

/** Raw write+fdatasync per second on the bench's disk: the ceiling is writers × this (one append in flight each). */
function rawSyncsPerSec(): number {
  const dir = mkdtempSync(join(tmpdir(), "strata-bench-sync-"));
  const fd = openSync(join(dir, "probe"), "w");
  const b = Buffer.alloc(300, 1);
  const n = 200;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) { writeSync(fd, b); fdatasyncSync(fd); }
  const perSec = n / ((performance.now() - t0) / 1000);
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
  return perSec;
}

export async function run(args: string[]): Promise<void> {
  const seconds = Number(arg(args, "seconds", "2"));
  const bodyBytes = Number(arg(args, "body", "300"));
  const writerCounts = arg(args, "writers", "1,10,100").split(",").map(Number);
  const syncsBefore = rawSyncsPerSec();
  const results: Result[] = [];
  for (const writers of writerCounts) {
    for (const sync of [true, false]) results.push(await runCase(writers, sync, seconds, bodyBytes));
  }
  const fmt = (n: number, d = 0): string => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  const rows = [["writers", "mode", "appends", "appends/s", "p50 ms", "p99 ms", "appends/batch"]];
  for (const r of results) {
    rows.push([String(r.writers), r.sync ? "durable (sync:true)" : "unsynced (sync:false)", fmt(r.appends),
      fmt(r.perSec), fmt(r.p50, 3), fmt(r.p99, 3), fmt(r.batch, 1)]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]): string => `| ${r.map((v, c) => v.padStart(widths[c])).join(" | ")} |`;
  console.log(`store bench: ${seconds}s per case, ${bodyBytes}-byte bodies, node ${process.version}`);
  console.log(line(rows[0]));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows.slice(1)) console.log(line(r));
  console.log("");
  for (const writers of writerCounts) {
    const d = results.find((r) => r.writers === writers && r.sync) as Result;
    const u = results.find((r) => r.writers === writers && !r.sync) as Result;
    console.log(`${writers} writers: durable/unsynced throughput ${(d.perSec / u.perSec).toFixed(2)}x, p99 ${(d.p99 / u.p99).toFixed(1)}x`);
  }
  const syncsAfter = rawSyncsPerSec();
  console.log(`raw write+fdatasync on this disk: ${fmt(syncsBefore)}/s before, ${fmt(syncsAfter)}/s after ` +
    "(with one append in flight per writer, durable appends/s <= writers × this)");
  console.log(`record encoding: ${encodeCost(bodyBytes).toFixed(2)} µs per message`);
  const target = results.find((r) => r.writers === 100 && r.sync);
  if (target) console.log(`target >= 50,000 durable appends/s with 100 writers: ${target.perSec >= 50_000 ? "met" : "NOT met"} (${fmt(target.perSec)})`);
}
