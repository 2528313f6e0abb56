import assert from "node:assert/strict";
import { test } from "node:test";
import { checkConverterSamples, decodeBody, telemetryToInbound, validateConverter, type Converter } from "../../../core/index.js";
import { lineConverters } from "../../../plugins/line-protocol/index.js";
import { modbusConverter, decode, encode } from "../../../plugins/modbus-tcp/index.js";
import { httpsDeviceConverter } from "../../../plugins/https-device/index.js";

test("telemetry becomes an inbound message: JSON, text and bytes; protocol mode adds deviceId", () => {
  const j = telemetryToInbound({ body: { a: 1 }, properties: { p: "q" }, messageId: "m" }, "d1", "protocol");
  assert.equal(j.systemProperties.contentType, "application/json");
  assert.equal(j.properties.deviceId, "d1");
  assert.deepEqual(decodeBody(j), { a: 1 });
  const t = telemetryToInbound({ body: "hi" }, "d1", "identity");
  assert.equal(t.properties.deviceId, undefined);
  assert.equal(decodeBody(t), "hi");
  assert.deepEqual(telemetryToInbound({ body: Buffer.from([1, 2]) }, "d1", "identity").body, Buffer.from([1, 2]));
});

test("every example converter's samples round-trip", () => {
  for (const c of [...lineConverters("deviceId", ["a", "b"]), modbusConverter, httpsDeviceConverter]) {
    assert.deepEqual(checkConverterSamples(c as Converter<unknown, unknown>), [], c.model);
  }
});

test("a converter whose sample disagrees, or that accepts a malformed sample, is caught", () => {
  const bad: Converter<string, never> = {
    model: "bad", description: "",
    recognize: () => "x",
    fromDevice: (raw) => [{ body: { v: raw.length } }],
    samples: { fromDevice: [{ raw: "abc", deviceId: "x", telemetry: [{ body: { v: 4 } }] }], malformed: [{ raw: "" }] },
  };
  const problems = checkConverterSamples(bad);
  assert.equal(problems.length, 2);
  assert.match(problems[0]!, /fromDevice gave/);
  assert.match(problems[1]!, /was accepted/);
  assert.throws(() => validateConverter({ ...bad, samples: { fromDevice: [] } } as never, "p"), /STRATA|samples.fromDevice/);
});

test("modbus values: typed, scaled, and written back", () => {
  const r = { name: "t", table: "holding" as const, address: 0, type: "int16" as const, scale: 0.1, writable: true };
  assert.equal(decode(r, [0xff38]), -20);
  assert.deepEqual(encode(r, -20), [0xff38]);
  const f = { ...r, type: "float32" as const, scale: 1 };
  assert.equal(decode(f, encode(f, 1.5)), 1.5);
  assert.throws(() => decode({ ...r, type: "uint32" }, [1]));
});
