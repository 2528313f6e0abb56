import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { silentLogger, type Message } from "../../../core/index.js";
import { follow, readLast } from "../../../plugins/root/telemetry/log-reader.js";
import { TelemetryLogWriter } from "../../../plugins/root/telemetry/log-writer.js";
import { toTelemetryRecord, type TelemetryRecord } from "../../../plugins/root/telemetry/record.js";
import { telemetryLogDir } from "../../../plugins/root/telemetry/segments.js";
import { TelemetryLogSink } from "../../../plugins/root/telemetry/sink.js";
import { telemetryTailCommand } from "../../../plugins/root/telemetry/tail-command.js";

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "strata-root-log-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let seq = 0;
function message(source: string, body: Buffer | string, extra: Partial<Message> = {}): Message {
  seq++;
  return {
    id: `gw:${seq}`,
    origin: "gw",
    source,
    enqueuedTime: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
    deadline: Date.now() + 60_000,
    priority: 0,
    body: Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8"),
    properties: { alert: "yes" },
    systemProperties: { messageId: `m-${seq}`, contentType: "application/json" },
    ...extra,
  };
}

function records(n: number, from = 0): TelemetryRecord[] {
  return Array.from({ length: n }, (_, i) => toTelemetryRecord(message("d1", JSON.stringify({ n: from + i }))));
}

function writer(dir: string, o: Partial<ConstructorParameters<typeof TelemetryLogWriter>[0]> = {}): TelemetryLogWriter {
  return new TelemetryLogWriter({
    dir, maxBytes: 1 << 30, maxAgeMs: 3_600_000, segmentBytes: 1 << 20, logger: silentLogger(), ...o,
  });
}

test("a record carries the tail fields; device and module ids split from the source", () => {
  const r = toTelemetryRecord(message("dev/mod", '{"t":21}'));
  assert.deepEqual(Object.keys(r).sort(),
    ["body", "deviceId", "enqueuedTime", "messageId", "moduleId", "properties", "strataId", "systemProperties"]);
  assert.equal(r.deviceId, "dev");
  assert.equal(r.moduleId, "mod");
  assert.equal(r.enqueuedTime, "2026-01-02T03:04:05.006Z");
  assert.equal(r.body, '{"t":21}');
  assert.deepEqual(r.properties, { alert: "yes" });
  assert.equal(r.systemProperties["contentType"], "application/json");
  assert.equal(toTelemetryRecord(message("dev", "x")).moduleId, null);
});

test("a body that is not valid utf-8 is kept as base64 with bodyEncoding", () => {
  const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
  const r = toTelemetryRecord(message("d", bytes));
  assert.equal(r.bodyEncoding, "base64");
  assert.deepEqual(Buffer.from(r.body, "base64"), bytes);
});

test("appended records read back in order; --limit takes the newest across segments", async (t) => {
  const dir = tempDir(t);
  const w = writer(dir, { segmentBytes: 4096 });
  await w.open();
  t.after(() => w.close());
  for (let i = 0; i < 10; i++) await w.append(records(20, i * 20));
  assert.ok(readdirSync(dir).length > 3, "small segments rotate");
  const all = await readLast(dir);
  assert.equal(all.lines.length, 200);
  assert.deepEqual(all.lines.map((l) => JSON.parse(l).body), Array.from({ length: 200 }, (_, i) => JSON.stringify({ n: i })));
  const last = await readLast(dir, 7);
  assert.deepEqual(last.lines.map((l) => JSON.parse(l).body), Array.from({ length: 7 }, (_, i) => JSON.stringify({ n: 193 + i })));
  assert.equal((await readLast(dir, 0)).lines.length, 0);
});

test("a torn last line (crash mid-write) is not shown, and a reopened writer starts a new segment", async (t) => {
  const dir = tempDir(t);
  const w = writer(dir);
  await w.open();
  await w.append(records(3));
  await w.close();
  const [first] = readdirSync(dir);
  appendFileSync(join(dir, first!), '{"deviceId":"torn"');
  assert.equal((await readLast(dir)).lines.length, 3);
  const w2 = writer(dir);
  await w2.open();
  t.after(() => w2.close());
  await w2.append(records(2, 100));
  const lines = (await readLast(dir)).lines.map((l) => JSON.parse(l) as TelemetryRecord);
  assert.equal(lines.length, 5);
  assert.equal(readdirSync(dir).length, 2);
});

test("a batch redelivered after a crash (appended, ack not yet durable) is not written twice, also across a restart", async (t) => {
  const dir = tempDir(t);
  const batch = records(50);
  const w = writer(dir);
  await w.open();
  await w.append(batch);
  await w.append(batch.slice(40));
  assert.equal(w.duplicatesDropped, 10);
  await w.close();
  // The root restarts: the same batch comes again from the queue, plus new messages behind it.
  const w2 = writer(dir);
  await w2.open();
  t.after(() => w2.close());
  const next = records(5, 50);
  await w2.append([...batch, ...next]);
  assert.equal(w2.duplicatesDropped, 50);
  const lines = (await readLast(dir)).lines.map((l) => JSON.parse(l) as TelemetryRecord);
  assert.deepEqual(lines.map((l) => l.strataId), [...batch, ...next].map((r) => r.strataId), "each message once, in order");
});

test("retention by size deletes the oldest segments and keeps the newest", async (t) => {
  const dir = tempDir(t);
  const w = writer(dir, { segmentBytes: 4096, maxBytes: 16 * 1024 });
  await w.open();
  t.after(() => w.close());
  for (let i = 0; i < 50; i++) await w.append(records(10, i * 10));
  const total = readdirSync(dir).reduce((sum, n) => sum + statSync(join(dir, n)).size, 0);
  assert.ok(total <= 16 * 1024 + 4096 * 2, `kept ${total} bytes`);
  const kept = (await readLast(dir)).lines.map((l) => JSON.parse(JSON.parse(l).body).n as number);
  assert.equal(kept[kept.length - 1], 499, "the newest message is kept");
  assert.ok(kept[0]! > 0, "the oldest messages are gone");
  for (let i = 1; i < kept.length; i++) assert.equal(kept[i], kept[i - 1]! + 1, "what is kept is contiguous");
});

test("retention by age deletes closed segments older than max age", async (t) => {
  const dir = tempDir(t);
  let now = Date.now();
  const w = writer(dir, { maxAgeMs: 3_600_000, now: () => now });
  await w.open();
  t.after(() => w.close());
  await w.append(records(5));
  now += 3_600_000 / 10 + 1; // the segment is old enough to close on the next append
  await w.append(records(5, 5));
  assert.equal(readdirSync(dir).length, 2);
  now += 2 * 3_600_000; // both segments' files are now older than max age by this clock
  await w.enforceRetention();
  const left = (await readLast(dir)).lines.map((l) => JSON.parse(JSON.parse(l).body).n as number);
  assert.deepEqual(left, [5, 6, 7, 8, 9], "only the segment being written is kept");
});

test("follow sees lines appended later, across a rotation", async (t) => {
  const dir = tempDir(t);
  const w = writer(dir, { segmentBytes: 4096 });
  await w.open();
  t.after(() => w.close());
  await w.append(records(3));
  const start = await readLast(dir);
  const seen: number[] = [];
  const abort = new AbortController();
  const got100 = new Promise<void>((resolve) => {
    void follow(dir, start.position, (line) => {
      seen.push(JSON.parse(JSON.parse(line).body).n);
      if (seen.length === 100) resolve();
    }, abort.signal, 50);
  });
  for (let i = 0; i < 10; i++) await w.append(records(10, 3 + i * 10));
  await got100;
  abort.abort();
  assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => 3 + i));
  assert.ok(readdirSync(dir).length > 1, "the writer rotated while followed");
});

test("the sink reports delivered once written, retry when the log is closed", async (t) => {
  const dir = tempDir(t);
  const w = writer(dir);
  await w.open();
  const sink = new TelemetryLogSink(w, silentLogger());
  const leases = [message("d1", "a"), message("d2/m", "b")].map((m) => ({ message: m, endpoint: "sink:telemetryLog", attempts: 0 }));
  assert.deepEqual(await sink.deliver(leases), ["delivered", "delivered"]);
  assert.deepEqual((await readLast(dir)).lines.map((l) => JSON.parse(l).deviceId), ["d1", "d2"]);
  await w.close();
  assert.deepEqual(await sink.deliver(leases), ["retry", "retry"]);
});

async function runTail(dataDir: string, args: string[], signal = new AbortController().signal) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (c: Buffer) => (out += c.toString()));
  stderr.on("data", (c: Buffer) => (err += c.toString()));
  const code = await telemetryTailCommand.run(args, { config: {}, dataDir, stdout, stderr, signal });
  return { code, out, err };
}

test("telemetry tail --json --limit prints the newest messages, one JSON object per line", async (t) => {
  const dataDir = tempDir(t);
  const w = writer(telemetryLogDir(dataDir));
  await w.open();
  t.after(() => w.close());
  await w.append(records(5));
  await w.append([toTelemetryRecord(message("dev/mod", Buffer.from([0xc3, 0x28])))]);
  const { code, out } = await runTail(dataDir, ["--json", "--limit", "2"]);
  assert.equal(code, 0);
  const lines = out.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.equal(lines[0].body, JSON.stringify({ n: 4 }));
  assert.deepEqual(
    { deviceId: lines[1].deviceId, moduleId: lines[1].moduleId, bodyEncoding: lines[1].bodyEncoding, body: lines[1].body },
    { deviceId: "dev", moduleId: "mod", bodyEncoding: "base64", body: Buffer.from([0xc3, 0x28]).toString("base64") },
  );
  for (const key of ["enqueuedTime", "messageId", "properties", "systemProperties"]) assert.ok(key in lines[0], key);
  assert.equal((await runTail(dataDir, ["--json"])).out.trimEnd().split("\n").length, 6);
});

test("telemetry tail on an empty or absent log prints nothing; bad arguments exit 2 naming them", async (t) => {
  const dataDir = tempDir(t);
  assert.deepEqual(await runTail(dataDir, ["--json"]), { code: 0, out: "", err: "" });
  const noJson = await runTail(dataDir, []);
  assert.equal(noJson.code, 2);
  assert.match(noJson.err, /--json is required/);
  const badLimit = await runTail(dataDir, ["--json", "--limit", "x"]);
  assert.equal(badLimit.code, 2);
  assert.match(badLimit.err, /--limit needs a whole number/);
});

test("telemetry tail --follow prints new messages until aborted", async (t) => {
  const dataDir = tempDir(t);
  const w = writer(telemetryLogDir(dataDir));
  await w.open();
  t.after(() => w.close());
  await w.append(records(1));
  const abort = new AbortController();
  const stdout = new PassThrough();
  const lines: TelemetryRecord[] = [];
  let buffered = "";
  // 1. The first line (the backlog) comes out; 2. only then are two more appended, which follow must print.
  let gotFirst!: () => void;
  const first = new Promise<void>((resolve) => (gotFirst = resolve));
  const gotThree = new Promise<void>((resolve) => {
    stdout.on("data", (c: Buffer) => {
      buffered += c.toString();
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        lines.push(JSON.parse(buffered.slice(0, nl)));
        buffered = buffered.slice(nl + 1);
      }
      if (lines.length >= 1) gotFirst();
      if (lines.length >= 3) resolve();
    });
  });
  const run = telemetryTailCommand.run(["--json", "--follow", "--limit", "1"],
    { config: {}, dataDir, stdout, stderr: new PassThrough(), signal: abort.signal });
  await first;
  await w.append(records(2, 1));
  await gotThree;
  abort.abort();
  assert.equal(await run, 0);
  assert.deepEqual(lines.map((l) => JSON.parse(l.body).n), [0, 1, 2]);
});
