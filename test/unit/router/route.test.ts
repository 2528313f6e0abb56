import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRoute, RouteError } from "../../../core/router/index.js";
import { jsonMsg, msg } from "./helpers.js";

const device = msg({ source: "dev1" });
const moduleNoOutput = msg({ source: "dev1/filter" });
const filterOut1 = msg({ source: "dev1/filter", systemProperties: { outputName: "out1" } });
const filterOut2 = msg({ source: "dev1/filter", systemProperties: { outputName: "out2" } });
const otherOut1 = msg({ source: "dev1/other", systemProperties: { outputName: "out1" } });
const childModule = msg({ source: "child/filter", systemProperties: { outputName: "out1" } });

// source → [device, module without output, filter/out1, filter/out2, other/out1, child's filter/out1, twin change]
const SOURCES: [string, boolean[]][] = [
  ["/*", [true, true, true, true, true, true, true]],
  ["/messages/*", [true, true, true, true, true, true, false]],
  ["/messages/modules/*", [false, true, true, true, true, true, false]],
  ["/messages/modules/filter/*", [false, true, true, true, false, true, false]],
  ["/messages/modules/filter/outputs/*", [false, false, true, true, false, true, false]],
  ["/messages/modules/filter/outputs/out1", [false, false, true, false, false, true, false]],
  ["/twinChangeNotifications", [false, false, false, false, false, false, true]],
];

for (const [source, expected] of SOURCES) {
  test(`source ${source}`, () => {
    const r = parseRoute(`FROM ${source} INTO $upstream`);
    const got = [device, moduleNoOutput, filterOut1, filterOut2, otherOut1, childModule].map((m) => r.matches(m, "telemetry"));
    got.push(r.matches(device, "twinChangeNotifications"));
    assert.deepEqual(got, expected);
  });
}

test("source: fixed words are case-insensitive, module and output names are not", () => {
  assert.equal(parseRoute("from /MESSAGES/Modules/filter/OUTPUTS/out1 into $upstream").matches(filterOut1), true);
  assert.equal(parseRoute("FROM /messages/modules/Filter/* INTO $upstream").matches(filterOut1), false);
  assert.equal(parseRoute("FROM /twinchangenotifications INTO $upstream").source.kind, "twinChangeNotifications");
});

test("source: module names may hold characters that are operators elsewhere", () => {
  const r = parseRoute("FROM /messages/modules/my-mod.v2/outputs/out-1 WHERE true INTO $upstream");
  assert.deepEqual(r.source, { kind: "module-output", module: "my-mod.v2", output: "out-1" });
  assert.equal(r.matches(msg({ source: "d/my-mod.v2", systemProperties: { outputName: "out-1" } })), true);
});

test("statement: SELECT * is optional and keywords are case-insensitive", () => {
  for (const text of [
    "SELECT * FROM /messages/* WHERE a = 'x' INTO $upstream",
    "select * from /messages/* where a = 'x' into $upstream",
    "FROM /messages/* WHERE a = 'x' INTO $upstream",
    "  FrOm /messages/*\n  WhErE a = 'x'\n  InTo $upstream  ",
  ]) {
    const r = parseRoute(text);
    assert.equal(r.condition, "a = 'x'", text);
    assert.equal(r.matches(msg({ properties: { a: "x" } })), true, text);
    assert.equal(r.matches(msg({ properties: { a: "y" } })), false, text);
  }
});

test("endpoints: $upstream, BrokeredEndpoint (both address forms, either quote), sinks", () => {
  assert.deepEqual(parseRoute("FROM /* INTO $upstream").endpoint, { kind: "upstream", name: "$upstream" });
  assert.deepEqual(parseRoute("FROM /* INTO $UPSTREAM").endpoint, { kind: "upstream", name: "$upstream" });
  assert.deepEqual(parseRoute(`FROM /* INTO BrokeredEndpoint("/modules/filter/inputs/input1")`).endpoint, {
    kind: "module-input", name: `BrokeredEndpoint("/modules/filter/inputs/input1")`, moduleId: "filter", input: "input1",
  });
  assert.deepEqual(parseRoute(`FROM /* INTO brokeredendpoint('/modules/filter/inputs/input1')`).endpoint.name,
    `BrokeredEndpoint("/modules/filter/inputs/input1")`);
  assert.deepEqual(parseRoute(`FROM /* INTO BrokeredEndpoint("/devices/leaf1/modules/m/inputs/i")`).endpoint, {
    kind: "module-input", name: `BrokeredEndpoint("/devices/leaf1/modules/m/inputs/i")`, deviceId: "leaf1", moduleId: "m", input: "i",
  });
  assert.deepEqual(parseRoute("FROM /* INTO telemetryLog").endpoint, { kind: "sink", name: "telemetryLog" });
  assert.deepEqual(parseRoute("FROM /* INTO kafka_north2").endpoint, { kind: "sink", name: "kafka_north2" });
});

test("$body: queried only for application/json with utf-8, utf-16 or utf-32", () => {
  const r = parseRoute("FROM /messages/* WHERE $body.temp > 30 INTO $upstream");
  const body = { temp: 31 };
  assert.equal(r.matches(jsonMsg(body)), true);
  assert.equal(r.matches(jsonMsg({ temp: 29 })), false);
  const as = (contentType: string | undefined, contentEncoding: string | undefined, bytes = Buffer.from(JSON.stringify(body))) =>
    r.matches(msg({ body: bytes, systemProperties: { contentType, contentEncoding } }));
  assert.equal(as("Application/JSON; charset=utf-8", "UTF-8"), true);
  assert.equal(as("application/json", "utf-16", Buffer.from(JSON.stringify(body), "utf16le")), true);
  const be = Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(JSON.stringify(body), "utf16le").swap16()]);
  assert.equal(as("application/json", "utf-16", be), true);
  const utf32 = Buffer.alloc(JSON.stringify(body).length * 4);
  [...JSON.stringify(body)].forEach((ch, i) => utf32.writeUInt32LE(ch.codePointAt(0)!, i * 4));
  assert.equal(as("application/json", "utf-32", utf32), true);
  // not queryable: wrong type, missing or unsupported encoding, not JSON at all
  assert.equal(as("text/plain", "utf-8"), false);
  assert.equal(as(undefined, "utf-8"), false);
  assert.equal(as("application/json", undefined), false);
  assert.equal(as("application/json", "ascii"), false);
  assert.equal(as("application/json", "utf-8", Buffer.from("{temp: 31")), false);
  assert.equal(as("application/json", "utf-8", Buffer.from([0xff, 0xfe, 0x00])), false);
});

test("$body paths: nested names, array indexes, quoted names; objects and arrays are Undefined", () => {
  const m = jsonMsg({ a: { b: { c: "deep" } }, list: [10, { x: 1 }], "odd key": true, obj: { k: 1 }, n: null });
  const v = (cond: string) => parseRoute(`FROM /* WHERE ${cond} INTO $upstream`).matches(m);
  assert.equal(v("$body.a.b.c = 'deep'"), true);
  assert.equal(v("$body.list[0] = 10"), true);
  assert.equal(v("$body.list[1].x = 1"), true);
  assert.equal(v("$body['odd key'] = true"), true);
  assert.equal(v("$BODY.a.b.c = 'deep'"), true);
  assert.equal(v("is_defined($body.obj)"), false);
  assert.equal(v("is_defined($body.list)"), false);
  assert.equal(v("is_defined($body.list[5])"), false);
  assert.equal(v("is_defined($body.a.missing.deeper)"), false);
  assert.equal(v("is_null($body.n)"), true);
  assert.equal(v("is_defined($body.constructor)"), false);
});

test("app properties vs system properties vs $body", () => {
  const m = jsonMsg({ level: "body" }, {
    source: "dev1/mod",
    properties: { level: "app", $connectionModuleId: "spoofed" },
    systemProperties: { contentType: "application/json", contentEncoding: "utf-8", messageId: "m1" },
  });
  const v = (cond: string) => parseRoute(`FROM /* WHERE ${cond} INTO $upstream`).matches(m);
  assert.equal(v("level = 'app'"), true);
  assert.equal(v("$body.level = 'body'"), true);
  assert.equal(v("$connectionModuleId = 'mod'"), true);
  assert.equal(v("$messageId = 'm1'"), true);
  assert.equal(v("messageId = 'm1'"), false);
});

test("the condition is compiled once: a route is a closure over the message", () => {
  const r = parseRoute("FROM /messages/* WHERE as_number(seq) % 2 = 0 INTO $upstream");
  const hits = Array.from({ length: 10 }, (_, i) => r.matches(msg({ properties: { seq: String(i) } }))).filter(Boolean);
  assert.equal(hits.length, 5);
  assert.ok(!(r instanceof RouteError));
});
