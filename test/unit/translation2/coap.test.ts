import assert from "node:assert/strict";
import { test } from "node:test";
import { checkConverterSamples, recognize } from "../../../core/index.js";
import { CommandMailbox, coapConverters, parseAnswer, routeOf, SENML_FORMAT, type CoapCommand } from "../../../plugins/coap/index.js";

test("converters: declared samples round-trip", () => {
  for (const c of coapConverters) assert.deepEqual(checkConverterSamples(c), [], c.model);
});

test("converters: the content format picks the converter; an unknown format is nobody's", () => {
  const input = (contentFormat: string | undefined) => ({ payload: Buffer.from("{}"), contentFormat, query: {} });
  assert.equal(recognize(coapConverters, input(undefined), { deviceId: "d" })?.converter.model, "coap-json");
  assert.equal(recognize(coapConverters, input("application/json"), { deviceId: "d" })?.converter.model, "coap-json");
  assert.equal(recognize(coapConverters, input(SENML_FORMAT), { deviceId: "d" })?.converter.model, "coap-senml");
  assert.equal(recognize(coapConverters, input("text/plain"), { deviceId: "d" }), undefined);
  assert.equal(recognize(coapConverters, input(undefined), {}), undefined, "no device id in the path: not recognised");
});

test("routes: resources, methods, percent-decoding and refusals", () => {
  assert.deepEqual(routeOf("POST", "/telemetry/dev%201?kind=a&x=1"), { kind: "telemetry", deviceId: "dev 1", query: { kind: "a", x: "1" } });
  assert.deepEqual(routeOf("GET", "/twin/d1"), { kind: "twin", deviceId: "d1" });
  assert.deepEqual(routeOf("GET", "/commands/d1"), { kind: "commands", deviceId: "d1" });
  assert.deepEqual(routeOf("POST", "/commands/d1/7"), { kind: "answer", deviceId: "d1", rid: 7 });
  assert.equal(routeOf("GET", "/telemetry/d1").kind, "method-not-allowed");
  assert.equal(routeOf("POST", "/twin/d1").kind, "method-not-allowed");
  assert.equal(routeOf("POST", "/commands/d1/x").kind, "not-found");
  assert.equal(routeOf("POST", "/telemetry").kind, "not-found");
  assert.equal(routeOf("POST", "/telemetry/a/b/c").kind, "not-found");
  assert.equal(routeOf("GET", "/other/d1").kind, "not-found");
  assert.equal(routeOf("POST", "/telemetry/%E0%A4%A").kind, "not-found");
});

test("answers: {status, payload}, a bare JSON value, text, or nothing", () => {
  assert.deepEqual(parseAnswer(Buffer.from('{"status":409,"payload":"busy"}')), { status: 409, payload: "busy" });
  assert.deepEqual(parseAnswer(Buffer.from('{"ok":true}')), { status: 200, payload: { ok: true } });
  assert.deepEqual(parseAnswer(Buffer.from("done")), { status: 200, payload: "done" });
  assert.deepEqual(parseAnswer(Buffer.alloc(0)), { status: 200, payload: null });
});

const options = { maxQueued: 2, commandTimeoutMs: 5_000, methodTimeoutMs: 5_000 };
const never = new AbortController().signal;

test("mailbox: without an observer a command waits until taken, then counts as delivered", async () => {
  const box = new CommandMailbox(options);
  const delivered = box.deliver("d", { desired: { a: 1 } }, never);
  assert.deepEqual(box.take("other"), []);
  assert.deepEqual(box.take("d"), [{ desired: { a: 1 } }]);
  await delivered;
  assert.deepEqual(box.take("d"), []);
});

test("mailbox: an observer gets queued commands at once and new ones as they come", async () => {
  const box = new CommandMailbox(options);
  const first = box.deliver("d", { c2d: "x", properties: {} }, never);
  const seen: CoapCommand[] = [];
  const unobserve = box.observe("d", { notify: (c) => (seen.push(c), true) });
  await first;
  await box.deliver("d", { desired: { b: 2 } }, never);
  assert.deepEqual(seen, [{ c2d: "x", properties: {} }, { desired: { b: 2 } }]);
  unobserve();
  assert.equal(box.observed("d"), false);
  const queued = box.deliver("d", { desired: { c: 3 } }, never);
  assert.deepEqual(box.take("d"), [{ desired: { c: 3 } }]);
  await queued;
});

test("mailbox: a failing observer falls back to the queue", async () => {
  const box = new CommandMailbox(options);
  box.observe("d", { notify: () => false });
  const p = box.deliver("d", { desired: { a: 1 } }, never);
  assert.deepEqual(box.take("d"), [{ desired: { a: 1 } }]);
  await p;
});

test("mailbox: a full queue refuses, an undelivered command times out, abort and close reject", async () => {
  const box = new CommandMailbox({ ...options, commandTimeoutMs: 20 });
  const a = box.deliver("d", { desired: { a: 1 } }, never);
  const b = box.deliver("d", { desired: { b: 1 } }, never);
  await assert.rejects(box.deliver("d", { desired: { c: 1 } }, never), /max_queued_commands/);
  await assert.rejects(a, /did not observe or poll/);
  await assert.rejects(b, /did not observe or poll/);
  assert.deepEqual(box.take("d"), [], "timed-out commands are gone");
  const ac = new AbortController();
  const c = box.deliver("d", { desired: { c: 1 } }, ac.signal);
  ac.abort(new Error("hub gave up"));
  await assert.rejects(c, /hub gave up/);
  const d = box.deliver("d", { desired: { d: 1 } }, never);
  box.close(new Error("stopping"));
  await assert.rejects(d, /stopping/);
  await assert.rejects(box.deliver("d", { desired: { e: 1 } }, never), /stopping/);
});

test("mailbox: a method is numbered, delivered, and resolved by the device's answer for that rid only", async () => {
  const box = new CommandMailbox(options);
  const seen: CoapCommand[] = [];
  box.observe("d", { notify: (c) => (seen.push(c), true) });
  const call = box.call("d", "reboot", { delay: 1 }, never);
  await Promise.resolve();
  const cmd = seen[0] as { rid: number; method: string; payload: unknown };
  assert.equal(cmd.method, "reboot");
  assert.deepEqual(cmd.payload, { delay: 1 });
  assert.equal(box.answer("d", cmd.rid + 1, { status: 200, payload: null }), false, "an unknown rid");
  assert.equal(box.answer("other", cmd.rid, { status: 200, payload: null }), false, "another device's rid");
  assert.equal(box.answer("d", cmd.rid, { status: 200, payload: "ok" }), true);
  assert.deepEqual(await call, { status: 200, payload: "ok" });
  assert.equal(box.answer("d", cmd.rid, { status: 200, payload: "again" }), false, "answered once");
});

test("mailbox: a method with no answer times out; one never fetched fails too", async () => {
  const box = new CommandMailbox({ ...options, methodTimeoutMs: 30 });
  box.observe("d", { notify: () => true });
  await assert.rejects(box.call("d", "m", null, never), /no answer from d within 30 ms/);
  await assert.rejects(box.call("sleepy", "m", null, never), /did not observe or poll|no answer/);
});
