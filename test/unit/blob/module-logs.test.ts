import { test } from "node:test";
import assert from "node:assert/strict";
import { LogRing } from "../../../plugins/blob/log-ring.js";
import { parseLogsRequest, parseTime, PayloadError, renderLogs, selectLogs } from "../../../plugins/blob/module-logs.js";

const line = (plugin: string, n: number, level = 30, time = 1_000 + n): string => JSON.stringify({ level, time, plugin, msg: `${plugin} ${n}` });

test("IoT Edge durations and times: 90m, 1d, '2 days 3 hours 2 minutes', Unix seconds, RFC 3339", () => {
  const now = 10_000_000_000;
  assert.equal(parseTime("90m", now), now - 90 * 60_000);
  assert.equal(parseTime("1d", now), now - 86_400_000);
  assert.equal(parseTime("2 days 3 hours 2 minutes", now), now - (2 * 86_400_000 + 3 * 3_600_000 + 2 * 60_000));
  assert.equal(parseTime("1700000000", now), 1_700_000_000_000);
  assert.equal(parseTime("2024-05-01T10:00:00Z", now), Date.parse("2024-05-01T10:00:00Z"));
  assert.equal(parseTime("3 fortnights", now), undefined);
});

test("tail applies per source after the other filters; items overlap without duplicates; id is a regex on the source", () => {
  const ring = new LogRing();
  for (let i = 0; i < 5; i++) ring.push(`${line("mqtt", i)}\n${line("amqp", i, i === 4 ? 50 : 30)}\n`);
  const modules = [{ id: "sensor", lines: ["<3> 2024-01-01 00:00:00.000 +00:00 boom", "plain text line", "<7> 2024-01-01 00:00:01.000 +00:00 chatter"] }];
  const req = parseLogsRequest({ items: [{ id: "mqtt|sensor", filter: { tail: 2 } }, { id: "^mqtt$", filter: { regex: "mqtt 4" } }, { id: "amqp", filter: { loglevel: 3 } }] });
  const out = selectLogs(req, ring, modules);
  assert.deepEqual([...out.keys()], ["amqp", "mqtt", "sensor"]);
  assert.deepEqual(out.get("mqtt")!.map((e) => JSON.parse(e.line).msg), ["mqtt 3", "mqtt 4"]);
  assert.deepEqual(out.get("amqp")!.map((e) => JSON.parse(e.line).msg), ["amqp 4"], "error (pino 50) is syslog 3");
  assert.deepEqual(out.get("sensor")!.map((e) => e.line), ["plain text line", "<7> 2024-01-01 00:00:01.000 +00:00 chatter"]);
  const json = JSON.parse(renderLogs(out, "json")) as { id: string; logLevel: number; timeStamp: string | null }[];
  assert.deepEqual(json.filter((r) => r.id === "sensor").map((r) => [r.logLevel, r.timeStamp]), [[6, null], [7, "2024-01-01T00:00:01.000Z"]]);
  assert.equal(renderLogs(selectLogs(parseLogsRequest({ items: [{ id: "nothing" }] }), ring, modules), "text"), "\n");
});

test("a bad payload names its field", () => {
  assert.throws(() => parseLogsRequest({ items: {} }), (e: unknown) => e instanceof PayloadError && e.field === "items");
  assert.throws(() => parseLogsRequest({ items: [{ id: 3 }] }), (e: unknown) => e instanceof PayloadError && e.field === "items[0].id");
  assert.throws(() => parseLogsRequest({ items: [{ id: "x", filter: { regex: "[" } }] }), (e: unknown) => e instanceof PayloadError && e.field === "items[0].filter.regex");
  assert.throws(() => parseLogsRequest({ contentType: "xml" }), (e: unknown) => e instanceof PayloadError && e.field === "contentType");
  assert.deepEqual(parseLogsRequest({ sasUrl: "https://x/y?sig=abc" }).items.length, 1, "sasUrl accepted; no items = everything");
});
