// TTLs travel as deadlines; each hop rebases them onto its own clock (core/upstream/convert.ts), and a child
// learns its parent's clock offset from the Date header of its scope polls (core/scope/sync.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { fromAmqpMessage, rebaseDeadline, SKEW_TOLERANCE_MS, toAmqpMessage } from "../../../core/upstream/convert.js";
import { clockOffset } from "../../../core/scope/sync.js";
import { msg } from "./helpers.js";

test("a parent whose clock runs an hour ahead keeps a fresh message's remaining TTL", () => {
  const childNow = 1_700_000_000_000;
  const parentNow = childNow + 3600_000;
  const m = msg("leaf", 1, { deadline: childNow + 60_000 }, childNow);
  const back = fromAmqpMessage(toAmqpMessage(m, childNow), parentNow)!;
  assert.equal(back.deadline, parentNow + 60_000);
  // Without the rebase the parent would see it an hour past its deadline.
  assert.ok(m.deadline < parentNow);
});

test("a parent behind its child does not keep a message past its time", () => {
  const childNow = 1_700_000_000_000;
  const parentNow = childNow - 600_000;
  const m = msg("leaf", 1, { deadline: childNow + 60_000 }, childNow);
  assert.equal(fromAmqpMessage(toAmqpMessage(m, childNow), parentNow)!.deadline, parentNow + 60_000);
});

test("transit time and small differences leave the deadline alone; no sent clock, no change", () => {
  assert.equal(rebaseDeadline(5000, 1000, 1000 + SKEW_TOLERANCE_MS), 5000);
  assert.equal(rebaseDeadline(5000, undefined, 10_000_000), 5000);
  const m = msg("leaf", 1);
  assert.equal(fromAmqpMessage(toAmqpMessage(m), m.enqueuedTime + 3600_000)!.deadline, m.deadline);
});

test("clock offset from a Date header: the parent's clock minus ours, at the header's arrival", () => {
  const receivedAt = 1_700_000_000_250;
  // The parent's clock is 90 s ahead; its Date header truncates to the second.
  const date = Math.floor((receivedAt + 90_000) / 1000) * 1000;
  const offset = clockOffset({ date, receivedAt })!;
  assert.ok(Math.abs(offset - 90_000) <= 1000, String(offset));
  assert.equal(clockOffset({ receivedAt }), undefined);
});
