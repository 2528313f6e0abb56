import { PassThrough } from "node:stream";
import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../../core/index.js";
import { LogRing } from "../../../plugins/blob/log-ring.js";

test("the log ring tees a pino logger (children included) and filters by time, level, tail and pattern", async () => {
  const sink = new PassThrough();
  const seen: string[] = [];
  sink.on("data", (c: Buffer) => seen.push(c.toString()));
  const logger = createLogger({ level: "debug", destination: sink });
  const ring = new LogRing();
  ring.attach(logger.child({ plugin: "blob" }));
  logger.child({ area: "hub" }).debug({ n: 1 }, "one");
  logger.warn({ n: 2 }, "two");
  logger.child({ plugin: "mqtt" }).error({ n: 3 }, "three");
  await new Promise((r) => setImmediate(r));
  assert.equal(ring.select({}).length, 3);
  assert.deepEqual(ring.select({ minLevel: 40 }).map((l) => JSON.parse(l.line).msg), ["two", "three"]);
  assert.deepEqual(ring.select({ tail: 1 }).map((l) => JSON.parse(l.line).msg), ["three"]);
  assert.deepEqual(ring.select({ regex: /"plugin":"mqtt"/ }).map((l) => JSON.parse(l.line).n), [3]);
  assert.equal(ring.select({ since: Date.now() + 60_000 }).length, 0);
  ring.detach();
  logger.info({}, "after");
  await new Promise((r) => setImmediate(r));
  assert.equal(ring.select({}).length, 3, "detached: no more lines kept");
  assert.ok(seen.join("").includes("after"), "the destination still gets everything");
});

test("the ring is bounded by bytes", () => {
  const ring = new LogRing(1000);
  for (let i = 0; i < 100; i++) ring.push(`${JSON.stringify({ time: i, level: 30, msg: "x".repeat(50) })}\n`);
  const kept = ring.select({});
  assert.ok(kept.length < 100 && kept.length > 5);
  assert.equal(JSON.parse(kept[kept.length - 1]!.line).time, 99);
});
