import { test } from "node:test";
import assert from "node:assert/strict";
import { isStrataError, StrataAggregateError } from "../../../core/errors.js";
import { RouteError, RouteTable, type RouteSpec } from "../../../core/router/index.js";
import { msg } from "./helpers.js";

const names = (t: RouteTable, m = msg()) => t.match(m, "telemetry").map((r) => r.endpoint.name);

test("match: every route whose source and condition hold, one entry per endpoint", () => {
  const t = new RouteTable();
  t.setRoutes([
    { name: "all", route: "FROM /messages/* INTO $upstream" },
    { name: "alerts", route: "FROM /messages/* WHERE alert = 'yes' INTO telemetryLog" },
    { name: "filter", route: `FROM /messages/modules/filter/outputs/out1 INTO BrokeredEndpoint("/modules/agg/inputs/in1")` },
    { name: "twin", route: "FROM /twinChangeNotifications INTO twinLog" },
  ]);
  assert.deepEqual(names(t), ["$upstream"]);
  assert.deepEqual(names(t, msg({ properties: { alert: "yes" } })), ["$upstream", "telemetryLog"]);
  assert.deepEqual(names(t, msg({ source: "d/filter", systemProperties: { outputName: "out1" } })),
    ["$upstream", `BrokeredEndpoint("/modules/agg/inputs/in1")`]);
  assert.deepEqual(t.match(msg(), "twinChangeNotifications").map((r) => r.route), ["twin"]);
  assert.equal(t.match(msg(), "telemetry")[0]!.route, "all");
});

test("match: no routes, no endpoints", () => {
  assert.deepEqual(new RouteTable().match(msg(), "telemetry"), []);
});

test("dedupe: highest priority (lowest number) and shortest explicit TTL win", () => {
  const t = new RouteTable();
  t.setRoutes([
    { name: "a", route: "FROM /messages/* INTO $upstream", priority: 5, timeToLiveSecs: 600 },
    { name: "b", route: "FROM /messages/* WHERE alert = 'yes' INTO $upstream", priority: 1 },
    { name: "c", route: "FROM /messages/* WHERE alert = 'yes' INTO $upstream", priority: 3, timeToLiveSecs: 60 },
    { name: "d", route: "FROM /* INTO sink1", priority: 2 },
  ]);
  assert.deepEqual(t.match(msg(), "telemetry"), [
    { route: "d", endpoint: { kind: "sink", name: "sink1" }, priority: 2, timeToLiveSecs: undefined },
    { route: "a", endpoint: { kind: "upstream", name: "$upstream" }, priority: 5, timeToLiveSecs: 600 },
  ]);
  // sorted by priority; the winning route's name is reported
  assert.deepEqual(t.match(msg({ properties: { alert: "yes" } }), "telemetry"), [
    { route: "b", endpoint: { kind: "upstream", name: "$upstream" }, priority: 1, timeToLiveSecs: 60 },
    { route: "d", endpoint: { kind: "sink", name: "sink1" }, priority: 2, timeToLiveSecs: undefined },
  ]);
});

test("priority defaults to 0; equal priorities keep route order", () => {
  const t = new RouteTable();
  t.setRoutes([
    { name: "x", route: "FROM /* INTO sinkB" },
    { name: "y", route: "FROM /* INTO sinkA" },
  ]);
  assert.deepEqual(t.match(msg(), "telemetry").map((m) => [m.endpoint.name, m.priority]), [["sinkB", 0], ["sinkA", 0]]);
});

test("setRoutes is atomic: a bad route leaves the old table in place", () => {
  const t = new RouteTable();
  t.setRoutes([{ name: "old", route: "FROM /* INTO $upstream" }]);
  assert.throws(
    () => t.setRoutes([
      { name: "new", route: "FROM /* INTO sinkNew" },
      { name: "bad", route: "FROM /* WHERE a = INTO sinkNew" },
    ]),
    (err: unknown) => err instanceof RouteError && err.code === "STRATA_ROUTE_SYNTAX" && err.route === "bad" && err.column === 19,
  );
  assert.deepEqual(names(t), ["$upstream"]);
  assert.deepEqual(t.list().map((r) => r.name), ["old"]);
  t.setRoutes([{ name: "new", route: "FROM /* INTO sinkNew" }]);
  assert.deepEqual(names(t), ["sinkNew"]);
  t.setRoutes([]);
  assert.deepEqual(names(t), []);
});

test("setRoutes reports every bad route at once", () => {
  const t = new RouteTable();
  assert.throws(
    () => t.setRoutes([
      { name: "b1", route: "FROM /nope INTO $upstream" },
      { name: "ok", route: "FROM /* INTO $upstream" },
      { name: "b2", route: "FROM /* INTO $upstream", priority: 10 },
    ]),
    (err: unknown) => err instanceof StrataAggregateError && err.code === "STRATA_ROUTE_SYNTAX" &&
      err.errors.length === 2 && err.message.includes('route "b1"') && err.message.includes('route "b2"'),
  );
  assert.deepEqual(names(t), []);
});

const BAD_SPECS: [string, RouteSpec, string][] = [
  ["priority above 9", { name: "p", route: "FROM /* INTO $upstream", priority: 10 }, "priority must be an integer from 0"],
  ["negative priority", { name: "p", route: "FROM /* INTO $upstream", priority: -1 }, "priority must be an integer from 0"],
  ["fractional priority", { name: "p", route: "FROM /* INTO $upstream", priority: 1.5 }, "priority must be an integer from 0"],
  ["zero TTL", { name: "p", route: "FROM /* INTO $upstream", timeToLiveSecs: 0 }, "timeToLiveSecs must be a positive whole number"],
  ["fractional TTL", { name: "p", route: "FROM /* INTO $upstream", timeToLiveSecs: 1.5 }, "timeToLiveSecs must be a positive whole number"],
  ["empty route", { name: "p", route: "  " }, "route must be a statement"],
  ["empty name", { name: "", route: "FROM /* INTO $upstream" }, "every route needs a non-empty name"],
];
for (const [what, spec, fragment] of BAD_SPECS) {
  test(`config: ${what} is STRATA_ROUTE_CONFIG`, () => {
    assert.throws(() => new RouteTable().setRoutes([spec]),
      (err: unknown) => isStrataError(err, "STRATA_ROUTE_CONFIG") && err.message.includes(fragment));
  });
}

test("config: duplicate route names are rejected", () => {
  assert.throws(
    () => new RouteTable().setRoutes([
      { name: "r", route: "FROM /* INTO $upstream" },
      { name: "r", route: "FROM /* INTO sink1" },
    ]),
    (err: unknown) => isStrataError(err, "STRATA_ROUTE_CONFIG") && err.message.includes("must be unique"),
  );
});

test("endpoints(): every distinct endpoint, for the hub to open queues and check sinks", () => {
  const t = new RouteTable();
  t.setRoutes([
    { name: "a", route: "FROM /* INTO $upstream" },
    { name: "b", route: "FROM /messages/* WHERE x = 'y' INTO $upstream" },
    { name: "c", route: "FROM /* INTO telemetryLog" },
  ]);
  assert.deepEqual(t.endpoints().map((e) => e.name), ["$upstream", "telemetryLog"]);
});

test("match is fast: 50 routes × 20k messages, body parsed once per message", () => {
  const t = new RouteTable();
  t.setRoutes(Array.from({ length: 50 }, (_, i) => ({
    name: `r${i}`,
    route: `FROM /messages/* WHERE $body.n > ${i} AND starts_with(kind, 'k') INTO sink${i % 5}`,
  })));
  const messages = Array.from({ length: 20_000 }, (_, i) => msg({
    body: Buffer.from(JSON.stringify({ n: i % 60 })),
    properties: { kind: "k1" },
    systemProperties: { contentType: "application/json", contentEncoding: "utf-8" },
  }));
  const started = process.hrtime.bigint();
  let delivered = 0;
  for (const m of messages) delivered += t.match(m, "telemetry").length;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(delivered > 0);
  console.log(`# router: ${messages.length} messages x 50 routes in ${ms.toFixed(0)} ms (${Math.round(messages.length / (ms / 1000))} msg/s)`);
});
