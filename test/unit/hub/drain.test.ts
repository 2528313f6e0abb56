import assert from "node:assert/strict";
import { test } from "node:test";
import { Drain, type DeliverContext } from "../../../core/hub/drain.js";
import type { DeliveryOutcome } from "../../../core/hub/types.js";
import { silentLogger } from "../../../core/log.js";
import type { Lease } from "../../../core/store/types.js";
import { msg, nOf, openStore } from "../store/helpers.js";

/** A consumer whose batches the test settles by hand. */
class HeldConsumer {
  readonly batches: { leases: readonly Lease[]; ctx: DeliverContext; settle(o: DeliveryOutcome[] | "all"): void }[] = [];
  readonly delivered: number[] = [];
  private waiters: (() => void)[] = [];

  deliver = (leases: readonly Lease[], _signal: AbortSignal, ctx: DeliverContext): Promise<DeliveryOutcome[]> =>
    new Promise((resolve) => {
      this.batches.push({
        leases, ctx,
        settle: (o) => {
          const outcomes = o === "all" ? leases.map((): DeliveryOutcome => "delivered") : o;
          outcomes.forEach((x, i) => x === "delivered" && this.delivered.push(nOf(leases[i]!.message)));
          resolve(outcomes);
        },
      });
      for (const w of this.waiters.splice(0)) w();
    });

  async batchCount(n: number): Promise<void> {
    while (this.batches.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }
}

async function fill(store: Awaited<ReturnType<typeof openStore>>, count: number): Promise<void> {
  for (let n = 0; n < count; n++) await store.enqueue(msg("dev1", n), ["ep"]);
}

test("pipelined drain: several batches out at once, settled in order, every message acked once", async (t) => {
  const store = await openStore(t);
  await fill(store, 12);
  const consumer = new HeldConsumer();
  const drain = new Drain({ queue: store.queue("ep"), deliver: consumer.deliver, batchSize: 4, pipeline: 3, logger: silentLogger() });
  drain.start();
  t.after(() => drain.stop());
  await consumer.batchCount(3);
  assert.deepEqual(consumer.batches.map((b) => b.ctx.pipelined), [false, true, true]);
  assert.deepEqual(consumer.batches.map((b) => b.leases.map((l) => nOf(l.message))), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]);
  // The newest settles first; the drain still settles (acks) them in the order they went out.
  consumer.batches[2]!.settle("all");
  consumer.batches[1]!.settle("all");
  consumer.batches[0]!.settle("all");
  const queue = store.queue("ep");
  for (let i = 0; i < 100 && queue.depth() > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(queue.depth(), 0);
});

test("pipelined drain: a retry stops new batches until those in flight settle, then goes out before anything newer", async (t) => {
  const store = await openStore(t);
  await fill(store, 8);
  const consumer = new HeldConsumer();
  const drain = new Drain({
    queue: store.queue("ep"), deliver: consumer.deliver, batchSize: 2, pipeline: 2, logger: silentLogger(), minBackoffMs: 1, maxBackoffMs: 2,
  });
  drain.start();
  t.after(() => drain.stop());
  await consumer.batchCount(2);
  // Batch 0 (0, 1): 1 must be retried. Batch 1 (2, 3) is still out: no third batch may start meanwhile.
  consumer.batches[0]!.settle(["delivered", "retry"]);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(consumer.batches.length, 2, "no new batch while a retry waits for the batches in flight");
  consumer.batches[1]!.settle(["retry", "retry"]);
  await consumer.batchCount(3);
  assert.deepEqual(consumer.batches[2]!.leases.map((l) => nOf(l.message)), [1, 2], "the retried messages come first, in order");
  assert.equal(consumer.batches[2]!.ctx.pipelined, false);
  for (let k = 2; consumer.delivered.length < 8; k++) {
    await consumer.batchCount(k + 1);
    consumer.batches[k]!.settle("all");
  }
  assert.deepEqual(consumer.delivered, [0, 1, 2, 3, 4, 5, 6, 7]);
});

test("stop settles what is in flight: nothing stays leased, nothing is lost", async (t) => {
  const store = await openStore(t);
  await fill(store, 6);
  const consumer = new HeldConsumer();
  const drain = new Drain({ queue: store.queue("ep"), deliver: consumer.deliver, batchSize: 2, pipeline: 3, logger: silentLogger() });
  drain.start();
  await consumer.batchCount(3);
  consumer.batches[0]!.settle("all");
  const stopped = drain.stop();
  consumer.batches[1]!.settle(["retry", "retry"]);
  consumer.batches[2]!.settle(["retry", "retry"]);
  await stopped;
  const queue = store.queue("ep");
  assert.equal(queue.depth(), 4);
  const again = await queue.lease(10);
  assert.deepEqual(again.map((l) => nOf(l.message)), [2, 3, 4, 5]);
});
