import assert from "node:assert/strict";
import { test } from "node:test";
import { TelemetryRecorder, translationConformanceSuite, TOKENS, type Message } from "../../../core/index.js";
import plugin, { modbusConverter } from "../../../plugins/modbus-tcp/index.js";
import { startTestGateway } from "../../support/gateway.js";
import { spawnSync } from "node:child_process";
import { startModbusPeer } from "./modbus-peer.js";

translationConformanceSuite(plugin, {
  converters: [modbusConverter],
  pluginKit: {
    invalidConfig: { poll_ms: 1 },
    provide(c) {
      c.register(TOKENS.Config, { useValue: { listen: { address: "127.0.0.1" } } });
      c.register(TOKENS.Hub, { useValue: { attach: () => ({ changed() {}, detach() {} }) } });
      c.register(TOKENS.Identities, { useValue: { self: "gw", on: () => () => undefined } });
    },
  },
});

const registers = [
  { name: "temperature", table: "holding", address: 0, type: "int16", scale: 0.1 },
  { name: "setpoint", table: "holding", address: 10, type: "uint16", writable: true },
  { name: "count", table: "input", address: 4, type: "uint32" },
];

test("modbus-tcp against pymodbus: one identity per unit, scaled values, writes from a method and a desired patch", { skip: hasPymodbus() ? false : "needs the Debian package python3-pymodbus: sudo apt-get install -y python3-pymodbus" }, async (t) => {
  const peer = await startModbusPeer();
  t.after(() => peer.stop());
  const tg = await startTestGateway({
    extraPlugins: [{
      module: plugin,
      settings: {
        poll_ms: 100,
        devices: [
          { id: "plc-1", port: peer.port, unit: 1, registers },
          { id: "plc-2", port: peer.port, unit: 2, registers: [{ name: "temperature", address: 0, type: "int16", scale: 0.1 }, { name: "count", table: "input", address: 4, type: "uint32" }] },
        ],
      },
    }],
  });
  const recorder = TelemetryRecorder.attach(tg.gw.hub, "test");
  t.after(async () => {
    recorder.stop();
    await tg.stop({ remove: true });
  });
  const body = (m: Message) => JSON.parse(m.body.toString()) as Record<string, number>;

  // 1. Each unit is its own identity; values are typed and scaled.
  const a = await recorder.waitFor((m) => m.source === "plc-1");
  assert.deepEqual(body(a), { temperature: 21.5, setpoint: 20, count: 65538 });
  const b = await recorder.waitFor((m) => m.source === "plc-2");
  assert.deepEqual(body(b), { temperature: -20, count: 7 });
  assert.equal(tg.gw.identities.get("plc-1")?.status, "enabled");

  // 2. A direct method from the service side writes the holding register; the next poll shows it.
  const r = await tg.gw.hub.invokeMethod("plc-1", { methodName: "write", payload: { setpoint: 25 }, responseTimeoutInSeconds: 10 });
  assert.equal(r.status, 200);
  await recorder.waitFor((m) => m.source === "plc-1" && body(m).setpoint === 25);
  const refused = await tg.gw.hub.invokeMethod("plc-1", { methodName: "write", payload: { temperature: 1 }, responseTimeoutInSeconds: 10 });
  assert.equal(refused.status, 400, "a register not marked writable is refused");

  // 3. A desired patch writes too, and the unit's reported properties follow.
  await tg.gw.hub.patchDesired("plc-1", { setpoint: 30 });
  await recorder.waitFor((m) => m.source === "plc-1" && body(m).setpoint === 30);
  const twin = await tg.gw.hub.getTwin("plc-1");
  assert.equal(twin.properties.desired.setpoint, 30);
});

function hasPymodbus(): boolean {
  return spawnSync("/usr/bin/python3", ["-c", "import pymodbus"], { stdio: "ignore" }).status === 0;
}
