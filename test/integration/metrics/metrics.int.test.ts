// /metrics on a real gateway: Prometheus text accepted by promtool, and the access modes.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { needPeer } from "../../support/peers.js";
import { startTestGateway } from "../../support/gateway.js";
import { get, metricsEntry, ownerToken, promtoolCheck } from "./helpers.js";

test("/metrics answers loopback peers with the core metrics, and promtool accepts the text", { skip: needPeer("prometheus", "promtool") }, async (t) => {
  const root = await startTestGateway({ deviceId: "gw-m", plugins: ["amqp"], extraPlugins: [metricsEntry()] });
  t.after(() => root.stop({ remove: true }));
  // Something to count: one message from the gateway's own identity (no sink at this root: it stays queued).
  await root.gw.hub.ingest({ id: "gw-m", deviceId: "gw-m", method: "sas" }, { body: Buffer.from("x"), properties: {}, systemProperties: {} });

  const res = await get(root, "/metrics");
  assert.equal(res.status, 200);
  assert.match(res.type, /^text\/plain; version=0\.0\.4/);
  for (const line of [
    /^strata_gateway_info\{device_id="gw-m",root="true"\} 1$/m,
    /^strata_hub_messages_total\{kind="ingested"\} 1$/m,
    /^strata_queue_depth\{endpoint="\$upstream"\} 1$/m,
    /^strata_queue_oldest_age_seconds\{endpoint="\$upstream"\} [0-9.e-]+$/m,
    /^strata_store_dropped_total\{cause="ttl"\} 0$/m,
    /^strata_listener_info\{name="amqp",address="127\.0\.0\.1",port="\d+"\} 1$/m,
    /^process_resident_memory_bytes \d+/m,
    /^nodejs_eventloop_lag_seconds [0-9.e-]+$/m,
  ]) assert.match(res.body, line);
  const lint = await promtoolCheck(res.body);
  assert.equal(lint.code, 0, lint.output);
});

test("access = token: a bearer token or an owner SAS token, nothing else", async (t) => {
  const dir = (await import("node:fs")).mkdtempSync(join((await import("node:os")).tmpdir(), "strata-metrics-token-"));
  const tokenFile = join(dir, "metrics.token");
  writeFileSync(tokenFile, "s3cret-scrape-token\n", { mode: 0o600 });
  const root = await startTestGateway({ deviceId: "gw-t", extraPlugins: [metricsEntry({ access: "token", token_file: tokenFile })] });
  t.after(() => root.stop({ remove: true }));
  assert.equal((await get(root, "/metrics")).status, 401, "loopback is not enough in token mode");
  assert.equal((await get(root, "/metrics", "Bearer wrong")).status, 401);
  assert.equal((await get(root, "/metrics", "Bearer s3cret-scrape-token")).status, 200);
  assert.equal((await get(root, "/metrics", ownerToken(root))).status, 200);
  assert.equal((await get(root, "/$strata/metrics/tree", "SharedAccessSignature sr=x&sig=y&se=1&skn=iothubowner")).status, 401);
});
