import assert from "node:assert/strict";
import { test } from "node:test";
import { compileTopic, templateProblem, topicLevel, topicRouter } from "../../../plugins/mqtt-sink/index.js";
import { message } from "./message.js";

const ctx = { hub: "myhub", sink: "mqtt" };

test("the default device template names the device", () => {
  const topic = topicRouter("strata/{deviceId}/messages", "strata/{deviceId}/modules/{moduleId}/messages", ctx);
  assert.equal(topic(message({ source: "d1" })), "strata/d1/messages");
});

test("a module's message takes the module template", () => {
  const topic = topicRouter("strata/{deviceId}/messages", "strata/{deviceId}/modules/{moduleId}/messages", ctx);
  assert.equal(topic(message({ source: "gw/filter" })), "strata/gw/modules/filter/messages");
});

test("every placeholder is filled", () => {
  const topic = compileTopic("{hub}/{sink}/{origin}/{deviceId}/{moduleId}/{outputName}", ctx);
  const m = message({ source: "d1/m1", origin: "gw3", systemProperties: { outputName: "out1" } });
  assert.equal(topic(m), "myhub/mqtt/gw3/d1/m1/out1");
});

test("a value stays one topic level: / + # % are percent-encoded", () => {
  assert.equal(topicLevel("a/b+c#d%e"), "a%2Fb%2Bc%23d%25e");
  const topic = compileTopic("x/{deviceId}/{outputName}", ctx);
  assert.equal(topic(message({ source: "d%1", systemProperties: { outputName: "o/+" } })), "x/d%251/o%2F%2B");
});

test("templates with wildcards, unknown placeholders or stray braces are refused", () => {
  assert.match(templateProblem("a/+/b") ?? "", /\+, # or NUL/);
  assert.match(templateProblem("a/#") ?? "", /\+, # or NUL/);
  assert.match(templateProblem("a/{device}") ?? "", /unknown placeholder \{device\}/);
  assert.match(templateProblem("a/{deviceId") ?? "", /unbalanced/);
  assert.equal(templateProblem("strata/{deviceId}/messages"), undefined);
  assert.throws(() => compileTopic("a/{nope}", ctx), /unknown placeholder/);
});

test("literal text around, between and after placeholders is kept", () => {
  const topic = compileTopic("pre{deviceId}-{moduleId}{origin}.tail", { hub: "h/1", sink: "s" });
  assert.equal(topic(message({ source: "d1/m1", origin: "gw" })), "pred1-m1gw.tail");
  assert.equal(compileTopic("{hub}", { hub: "h/1", sink: "s" })(message({ source: "d1" })), "h%2F1");
});
