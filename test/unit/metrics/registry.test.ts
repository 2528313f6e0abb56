import assert from "node:assert/strict";
import { test } from "node:test";
import { isStrataError, MetricsRegistry, buildGatewayState, parseGatewayState, parseStrataId, type CoreSnapshot } from "../../../core/index.js";

test("collect-on-scrape gauges and counters read their source at every scrape", async () => {
  const m = new MetricsRegistry({ processMetrics: false });
  let depth = 3;
  let sent = 5;
  m.gaugeFn("strata_test_depth", "depth", ["endpoint"], () => [[{ endpoint: "$upstream" }, depth]]);
  m.counterFn("strata_test_sent_total", "sent", [], () => sent);
  assert.match(await m.text(), /^strata_test_depth\{endpoint="\$upstream"\} 3$/m);
  depth = 0;
  sent = 9;
  const text = await m.text();
  assert.match(text, /^strata_test_depth\{endpoint="\$upstream"\} 0$/m);
  assert.match(text, /^strata_test_sent_total 9$/m);
});

test("names are checked: strata_ prefix, _total on counters, each registered once", () => {
  const m = new MetricsRegistry({ processMetrics: false });
  assert.throws(() => m.gauge("queue_depth", "x"), (e) => isStrataError(e) && e.code === "STRATA_METRICS_NAME" && /strata_/.test(e.message));
  assert.throws(() => m.counter("strata_sent", "x"), (e) => isStrataError(e) && e.code === "STRATA_METRICS_NAME" && /strata_sent_total/.test(e.message));
  m.counter("strata_sent_total", "x");
  assert.throws(() => m.counter("strata_sent_total", "x"), (e) => isStrataError(e) && e.code === "STRATA_METRICS_DUPLICATE");
});

test("per-head instruments are shared and labelled by head", async () => {
  const m = new MetricsRegistry({ processMetrics: false });
  m.heads().messagesIn.inc({ head: "mqtt" });
  m.heads().authFailures.inc({ head: "amqp", reason: "expired" });
  const text = await m.text();
  assert.match(text, /^strata_head_messages_in_total\{head="mqtt"\} 1$/m);
  assert.match(text, /^strata_head_auth_failures_total\{head="amqp",reason="expired"\} 1$/m);
});

test("the gateway state: upstream queue, drain rate since the last report, round trip through JSON", () => {
  const core: CoreSnapshot = {
    deviceId: "gw4", isRoot: false, listeners: [],
    hub: { ingested: 10, forwarded: 4, duplicates: 0, unrouted: 0, connected: 2, methodCalls: 0, methodTimeouts: 0 },
    store: {
      appended: 14, acked: 30, duplicates: 0, dropped: { ttl: 1, quota: 0, "dead-letter": 0 }, deadLettered: 0, usedBytes: 100, quotaBytes: 1000,
      queues: { $upstream: { depth: 7, oldestAgeMs: 1500 }, "c2d:d1": { depth: 1, oldestAgeMs: 9000 } },
    },
    upstream: { status: "connected", since: 1, parent: "gw3", reconnects: 2, failedAttempts: 0, sent: 5, retried: 0, refused: 0, openLinks: 1 },
  };
  const state = buildGatewayState(core, { accepted: { gw5: 42 }, previous: { at: 10_000, acked: 10 }, now: 20_000 });
  assert.deepEqual(state.upstream, { depth: 7, oldestAgeMs: 1500 });
  assert.deepEqual(state.queued, { depth: 8, oldestAgeMs: 9000 });
  assert.equal(state.drainPerSec, 2);
  assert.equal(state.link?.reconnects, 2);
  assert.deepEqual(parseGatewayState(Buffer.from(JSON.stringify(state))), state);
  assert.equal(parseGatewayState(Buffer.from("{not json")), undefined);
  assert.equal(parseGatewayState(Buffer.from(JSON.stringify({ v: 2, device: "x", at: 1 }))), undefined);
  assert.deepEqual(parseStrataId("gw-a:b:17"), { origin: "gw-a:b", seq: 17 });
  assert.equal(parseStrataId("nocolon"), undefined);
});
