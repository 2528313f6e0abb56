/**
 * Durability that can fail: a child process appends under load and reports each acknowledged append;
 * (1) it is killed with SIGKILL at a random moment and every acknowledged append must be there on reopen,
 * in order per writer; (2) under strace, every acknowledgement must follow a completed fdatasync/fsync that
 * began after the append was requested — and the same check must catch a store running with sync:false.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "../../../core/log.js";
import { LevelStore } from "../../../core/store/index.js";
import { needPeer, SOAK } from "../../support/peers.js";
import { tempDir } from "../../unit/store/helpers.js";
import { checkTrace } from "./trace-check.js";

const WRITER = join(__dirname, "crash-writer.js");

interface Ack { writer: number; k: number; id: string }

/** Runs the writer until `killAfter` acks are read, SIGKILLs it, returns every ack it printed. */
function runAndKill(dir: string, writers: number, killAfter: number): Promise<Ack[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, dir, String(writers), "0", "1"], { stdio: ["ignore", "pipe", "pipe"] });
    const acks: Ack[] = [];
    let rest = "";
    let stderr = "";
    let killed = false;
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on("data", (d: Buffer) => {
      const lines = (rest + d.toString()).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        const [tag, w, k, id] = line.split(" ");
        if (tag !== "A") continue;
        acks.push({ writer: Number(w), k: Number(k), id });
      }
      if (!killed && acks.length >= killAfter) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`writer exited ${code}/${signal} before the kill: ${stderr}`));
      else resolve(acks);
    });
  });
}

const rounds = SOAK ? 10 : 2;
for (let round = 1; round <= rounds; round++) {
  test(`kill -9 under load loses no acknowledged append, order kept per writer (round ${round})`, async (t) => {
    const dir = join(tempDir(t), "db");
    const writers = 50;
    const killAfter = 1000 + Math.floor(Math.random() * (SOAK ? 30_000 : 5000));
    const acks = await runAndKill(dir, writers, killAfter);
    assert.ok(acks.length >= killAfter);

    const store = new LevelStore({ path: dir, gatewayId: "crash", quotaBytes: 1 << 30, logger: silentLogger(), sweepIntervalMs: 0 });
    await store.open();
    t.after(() => store.close());
    const present = await store.queue("up").lease(10_000_000);
    const byWriter = new Map<number, number[]>();
    for (const l of present) {
      const w = Number(l.message.source.slice(1));
      const list = byWriter.get(w) ?? [];
      list.push(Number(l.message.properties.k));
      byWriter.set(w, list);
    }
    const ackedMax = new Map<number, number>();
    for (const a of acks) ackedMax.set(a.writer, Math.max(ackedMax.get(a.writer) ?? -1, a.k));
    let missing = 0;
    for (const [w, max] of ackedMax) {
      const ks = byWriter.get(w) ?? [];
      // Each writer awaits its appends one by one: what is on disk is 0..n in order, n >= the last ack.
      assert.deepEqual(ks, Array.from({ length: ks.length }, (_, i) => i), `writer ${w} order or gap`);
      if (ks.length <= max) missing += max + 1 - ks.length;
    }
    assert.equal(missing, 0, `acknowledged appends missing after kill -9 (acks ${acks.length})`);
    // And a restart never mints an id already used.
    const maxSeq = Math.max(...present.map((l) => Number(l.message.id.split(":")[1])));
    assert.ok(Number(store.nextId().split(":")[1]) > maxSeq);
    t.diagnostic(`killed after ${acks.length} acks; ${present.length} present (${present.length - acks.length} unacked but durable)`);
  });
}

async function traceWriter(t: import("node:test").TestContext, sync: boolean): Promise<ReturnType<typeof checkTrace>> {
  const base = tempDir(t);
  const tracePath = join(base, "trace.txt");
  const markers = openSync(join(base, "markers.txt"), "w");
  const writers = 20;
  const per = SOAK ? 500 : 50;
  const args = ["-f", "-e", "trace=fdatasync,fsync,write", "-o", tracePath,
    process.execPath, WRITER, join(base, "db"), String(writers), String(per), sync ? "1" : "0", "markers"];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn("strace", args, { stdio: ["ignore", "ignore", "pipe", markers] });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => { stderr += d.toString(); });
    child.on("error", reject);
    child.on("close", (c) => (c === 0 ? resolve(c) : reject(new Error(`strace exited ${c}: ${stderr}`))));
  });
  closeSync(markers);
  assert.equal(code, 0);
  const verdict = checkTrace(readFileSync(tracePath, "utf8"));
  assert.equal(verdict.acks, writers * per, "every ack marker found in the trace");
  return verdict;
}

test("strace: no append is acknowledged before an fdatasync/fsync that covers it", { skip: needPeer("strace") }, async (t) => {
  const durable = await traceWriter(t, true);
  assert.deepEqual(durable.violations.slice(0, 5), []);
  assert.ok(durable.syncs > 0 && durable.syncs < durable.acks, `group commit: ${durable.syncs} syncs for ${durable.acks} acks`);
  t.diagnostic(`sync:true — ${durable.acks} acks, ${durable.syncs} syncs, 0 violations`);

  // The same check must fail on a store that acknowledges before the disk has it.
  const unsynced = await traceWriter(t, false);
  assert.ok(unsynced.violations.length > unsynced.acks / 2,
    `the checker must catch sync:false: ${unsynced.violations.length} violations of ${unsynced.acks}`);
  t.diagnostic(`sync:false — ${unsynced.acks} acks, ${unsynced.syncs} syncs, ${unsynced.violations.length} violations`);
});
