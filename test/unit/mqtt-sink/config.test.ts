import assert from "node:assert/strict";
import { test } from "node:test";
import { mqttSinkConfigSchema } from "../../../plugins/mqtt-sink/index.js";

test("defaults alone make a valid config", () => {
  const c = mqttSinkConfigSchema.parse({});
  assert.equal(c.url, "mqtt://127.0.0.1:1883");
  assert.equal(c.qos, 1);
  assert.equal(c.protocol_version, 5);
  assert.equal(c.format, "raw");
  assert.equal(c.topic, "strata/{deviceId}/messages");
  assert.equal(c.max_in_flight, 1000);
  assert.equal(c.name, "mqtt");
});

test("bad values are refused, naming the key", () => {
  const bad = (input: Record<string, unknown>, key: string) => {
    const r = mqttSinkConfigSchema.safeParse(input);
    assert.equal(r.success, false, JSON.stringify(input));
    assert.deepEqual(r.error!.issues[0]!.path, [key]);
  };
  bad({ url: "http://broker:1883" }, "url");
  bad({ name: "mqtt-north" }, "name");
  bad({ name: "1st" }, "name");
  bad({ url: "mqtt://broker:1883/path" }, "url");
  bad({ qos: 0 }, "qos");
  bad({ protocol_version: 3 }, "protocol_version");
  bad({ format: "json" }, "format");
  bad({ topic: "a/+/b" }, "topic");
  bad({ module_topic: "a/{nope}" }, "module_topic");
  bad({ max_in_flight: 0 }, "max_in_flight");
  const unknown = mqttSinkConfigSchema.safeParse({ passwd: "x" });
  assert.equal(unknown.success, false);
  assert.deepEqual((unknown.error!.issues[0] as { keys?: string[] }).keys, ["passwd"]);
});

test("mqtts URLs and every option are accepted", () => {
  const c = mqttSinkConfigSchema.parse({
    url: "mqtts://broker.example:8883", ca_file: "/etc/ca.pem", username: "u", password_file: "/etc/pw",
    client_id: "gw", protocol_version: 4, format: "envelope", qos: 2, max_in_flight: 10, topic: "t/{deviceId}",
  });
  assert.equal(c.protocol_version, 4);
  assert.equal(c.qos, 2);
});
