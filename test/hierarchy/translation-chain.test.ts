// Identity translation through a 3-gateway chain (root ← gw1 ← gw2 on 127.77.11.x): a Modbus unit (Debian's
// python3-pymodbus) polled by gw2's modbus-tcp plugin. Its identity is registered at the root only, with gw2
// as its parent (IoT Hub's deviceScope); scope sync brings it down, since a child may not create identities
// on first sight. From the root: its telemetry arrives under its own identity, a direct method writes a
// register, a desired patch writes one too and its reported properties come back up.
import "reflect-metadata";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { buildTree, treeUnavailable, type TelemetryLine, type Tree } from "../support/tree.js";
import { startModbusPeer } from "../integration/translation/modbus-peer.js";
import { rootService, type RootService } from "./service.js";

const hasPymodbus = spawnSync("/usr/bin/python3", ["-c", "import pymodbus"], { stdio: "ignore" }).status === 0;
const skip = treeUnavailable() ?? (hasPymodbus ? undefined : "needs the Debian package python3-pymodbus");
let tree: Tree;
let service: RootService;
let peer: { port: number; stop(): Promise<void> } | undefined;

const registers = [
  { name: "temperature", table: "holding", address: 0, type: "int16", scale: 0.1 },
  { name: "setpoint", table: "holding", address: 10, type: "uint16", writable: true },
  { name: "count", table: "input", address: 4, type: "uint32" },
];

before(async () => {
  if (skip) return;
  peer = await startModbusPeer();
  tree = await buildTree({
    subnet: "127.77.11",
    gateways: [
      { id: "root" },
      { id: "gw1", parent: "root" },
      {
        id: "gw2", parent: "gw1",
        plugins: { "modbus-tcp": { poll_ms: 200, auto_create: false, devices: [{ id: "plc-1", port: peer.port, unit: 1, registers }] } },
      },
    ],
  });
  await tree.startAll();
  service = rootService(tree);
});

after(async () => {
  await tree?.cleanup();
  await peer?.stop();
});

const values = (r: TelemetryLine) => JSON.parse(r.body) as Record<string, number>;

test("a Modbus unit registered at the root under the bottom gateway: telemetry, a method and a desired patch work from the root", { skip }, async () => {
  // 1. Register at the root only, the bottom gateway as parent.
  const created = await service.call("PUT", "/devices/plc-1", { deviceId: "plc-1", deviceScope: "ms-azure-iot-edge://gw2" });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const device = await service.call("GET", "/devices/plc-1");
  assert.match(String((device.body as Record<string, unknown>)["deviceScope"]), /gw2/);

  // 2. Its polled, scaled values reach the root under its own identity (not the gateway's).
  const first = await tree.followTelemetry((rs) => rs.some((r) => r.deviceId === "plc-1"), 30_000);
  const reading = first.find((r) => r.deviceId === "plc-1")!;
  assert.deepEqual(values(reading), { temperature: 21.5, setpoint: 20, count: 65538 });
  assert.equal(reading.moduleId, null);
  assert.equal(first.some((r) => r.deviceId === "gw2" && r.properties["deviceId"] === "plc-1"), false, "identity mode: nothing under the gateway's identity");

  // 3. A direct method from the root writes the holding register two gateways down.
  const result = await service.invokeWhenReachable("plc-1", "write", { setpoint: 25 }, 30_000);
  assert.equal(result.status, 200, JSON.stringify(result));
  await tree.followTelemetry((rs) => rs.some((r) => r.deviceId === "plc-1" && values(r).setpoint === 25), 15_000);
  const refused = await service.invokeMethod("plc-1", "write", { temperature: 1 });
  assert.equal(refused.status, 400, "a register not marked writable is refused");

  // 4. A desired patch from the root writes the register; the unit's reported properties come back up.
  assert.equal((await service.patchDesired("plc-1", { setpoint: 30 })).status, 200);
  await tree.followTelemetry((rs) => rs.some((r) => r.deviceId === "plc-1" && values(r).setpoint === 30), 15_000);
  const deadline = Date.now() + 15_000;
  let reported: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    reported = (await service.getTwin("plc-1")).properties.reported;
    if (reported["setpoint"] === 30) break;
    await new Promise((r) => setTimeout(r, 200)); // polling the root's twin: the reported patch travels up hop by hop
  }
  assert.equal(reported["setpoint"], 30, `reported at the root: ${JSON.stringify(reported)}`);
});
