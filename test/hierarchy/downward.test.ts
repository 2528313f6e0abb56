// Everything that flows DOWN a five-gateway chain (root + gw1..gw4 on 127.77.3.x), to Azure SDK leaves on the
// bottom gateway over MQTT and AMQP: direct methods (and a timeout as 504), desired patches, C2D messages
// with their settlement travelling back up, and twins across a cut: a reported patch made while the bottom
// gateway was cut off reaches the root, a desired patch made meanwhile reaches the device on reconnect.
import "reflect-metadata";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Message as SdkMessage, type Twin } from "azure-iot-device";
import { buildTree, treeUnavailable, type Tree } from "../support/tree.js";
import { openLeaf, type Leaf } from "./leaves.js";
import { rootService, type RootService } from "./service.js";

const skip = treeUnavailable();
let tree: Tree;
let service: RootService;
const leaves = new Map<string, Leaf>();

before(async () => {
  if (skip) return;
  tree = await buildTree({
    subnet: "127.77.3",
    gateways: [
      { id: "root" },
      { id: "gw1", parent: "root" },
      { id: "gw2", parent: "gw1" },
      { id: "gw3", parent: "gw2" },
      { id: "gw4", parent: "gw3" },
    ],
    leaves: [{ id: "leafM", gateway: "gw4" }, { id: "leafQ", gateway: "gw4" }, { id: "leafR", gateway: "gw4" }],
  });
  await tree.startAll();
  service = rootService(tree);
  for (const [id, transport] of [["leafM", "mqtt"], ["leafQ", "amqp"]] as const) {
    const leaf = await openLeaf(id, tree.leafConnectionString(id), transport, tree.caPem);
    leaves.set(id, leaf);
    leaf.client.onDeviceMethod("echo", (req, res) => {
      res.send(200, { echoed: req.payload, by: id }, () => undefined);
    });
    // "silent" never answers: the root must report a timeout (504).
    leaf.client.onDeviceMethod("silent", () => undefined);
  }
});

after(async () => {
  for (const l of leaves.values()) await l.close();
  await tree?.cleanup();
});

for (const id of ["leafM", "leafQ"]) {
  test(`${id}: a direct method from the root reaches the leaf four gateways down and its answer comes back`, { skip }, async () => {
    const result = await service.invokeWhenReachable(id, "echo", { n: 42 });
    assert.deepEqual(result, { status: 200, payload: { echoed: { n: 42 }, by: id } });
  });
}

test("a method the leaf never answers is reported to the root's caller as 504", { skip }, async () => {
  await service.invokeWhenReachable("leafM", "echo", null);
  const started = Date.now();
  const answer = await service.call("POST", "/twins/leafM/methods", { methodName: "silent", payload: null, responseTimeoutInSeconds: 2 });
  assert.equal(answer.status, 504);
  assert.ok(Date.now() - started < 6_000, "answered close to the timeout");
});

for (const id of ["leafM", "leafQ"]) {
  test(`${id}: a desired patch made at the root reaches the leaf with the root's version`, { skip }, async () => {
    const leaf = leaves.get(id)!;
    const twin: Twin = await leaf.client.getTwin();
    const got = new Promise<Record<string, unknown>>((resolve) => {
      twin.on("properties.desired", (patch: Record<string, unknown>) => {
        if (patch["color"] === `red-${id}`) resolve(patch);
      });
    });
    // The subscription travels up as links; patch until the leaf has it (each patch is a new version).
    const deadline = Date.now() + 20_000;
    let patch: Record<string, unknown> | undefined;
    while (!patch && Date.now() < deadline) {
      const answer = await service.patchDesired(id, { color: `red-${id}` });
      assert.equal(answer.status, 200);
      patch = await Promise.race([got, new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000).unref())]);
    }
    assert.ok(patch, "the desired patch reached the leaf");
    const rootTwin = await service.getTwin(id);
    assert.equal(patch["$version"], rootTwin.properties.desired["$version"]);
  });
}

// MQTT can only complete (PUBACK); AMQP abandons first, and the abandon must travel up to the root.
for (const [id, abandonFirst] of [["leafM", false], ["leafQ", true]] as const) {
  test(`${id}: C2D from the root reaches the leaf${abandonFirst ? "; abandon brings it back, complete ends it" : ""}`, { skip }, async () => {
    const client = leaves.get(id)!.client;
    const seen: SdkMessage[] = [];
    const expected = abandonFirst ? 2 : 1;
    const done = new Promise<void>((resolve) => {
      client.on("message", (msg: SdkMessage) => {
        seen.push(msg);
        if (seen.length < expected) client.abandon(msg, () => undefined);
        else {
          client.complete(msg, () => undefined);
          resolve();
        }
      });
    });
    // Wait until the leaf's C2D link is mirrored up to the root (methods prove the device is reachable).
    await service.invokeWhenReachable(id, "echo", null);
    const sent = await service.sendC2D(id, `hello ${id}`, { "iothub-messageid": `c2d-${id}`, "iothub-app-kind": "greeting" });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    await done;
    assert.equal(seen.length, expected);
    for (const m of seen) {
      assert.equal(m.getData().toString(), `hello ${id}`);
      assert.equal(m.messageId, `c2d-${id}`);
      assert.equal(m.properties.getValue("kind"), "greeting");
    }
    client.removeAllListeners("message");
  });
}

test("cut off: a reported patch made at the bottom reaches the root on reconnect, a desired patch missed meanwhile reaches the leaf", { skip }, async () => {
  const leaf = leaves.get("leafM")!;
  const twin: Twin = await leaf.client.getTwin();
  await service.invokeWhenReachable("leafM", "echo", null);
  // Cut gw4 off: kill -9 its parent gw3.
  const gw4 = tree.gw("gw4");
  const mark = gw4.lines.length;
  await tree.gw("gw3").kill();
  await gw4.waitForLog("upstream link lost", 30_000, mark);
  // While cut off: two reported patches (the root must end with the last) and a desired patch at the root.
  for (const temp of [1, 2]) {
    await new Promise<void>((resolve, reject) => twin.properties.reported.update({ temp, cut: true }, (err?: Error) => (err ? reject(err) : resolve())));
  }
  assert.equal(((await service.getTwin("leafM")).properties.reported as Record<string, unknown>)["temp"], undefined);
  const missed = new Promise<Record<string, unknown>>((resolve) => {
    twin.on("properties.desired", (patch: Record<string, unknown>) => {
      if (patch["mode"] === "missed") resolve(patch);
    });
  });
  assert.equal((await service.patchDesired("leafM", { mode: "missed" })).status, 200);
  // Reconnect: gw3 comes back, gw4 relinks, syncs the reported patch and reconciles the desired one.
  const back = gw4.lines.length;
  await tree.gw("gw3").start();
  await gw4.waitUpstream(30_000, back);
  const patch = await missed;
  assert.equal(patch["mode"], "missed");
  const deadline = Date.now() + 20_000;
  let reported: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    reported = (await service.getTwin("leafM")).properties.reported;
    if (reported["temp"] === 2) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(reported["temp"], 2);
  assert.equal(reported["cut"], true);
});

test("a device disabled at the root is disconnected at the bottom within 10 s and refused afterwards, also once its gateway is cut off", { skip }, async () => {
  const gw4 = tree.gw("gw4");
  const leaf = await openLeaf("leafR", tree.leafConnectionString("leafR"), "mqtt", tree.caPem);
  leaves.set("leafR", leaf);
  await leaf.send(0, 1);
  const device = await service.call("GET", "/devices/leafR");
  assert.equal(device.status, 200);
  const mark = gw4.lines.length;
  const started = Date.now();
  const put = await service.call("PUT", "/devices/leafR", { ...(device.body as Record<string, unknown>), status: "disabled" }, { "if-match": "*" });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  await gw4.waitForLine((l) => l.includes('"msg":"disconnecting revoked identity"') && l.includes('"identity":"leafR"'), 10_000, "leafR disconnected at gw4", mark);
  assert.ok(Date.now() - started < 10_000);
  await assert.rejects(openLeaf("leafR", tree.leafConnectionString("leafR"), "mqtt", tree.caPem), "refused while gw4 is connected");
  // Cut gw4 off from its parent: it keeps refusing from its own cache.
  const cut = gw4.lines.length;
  await tree.gw("gw3").kill();
  await gw4.waitForLog("upstream link lost", 30_000, cut);
  await assert.rejects(openLeaf("leafR", tree.leafConnectionString("leafR"), "mqtt", tree.caPem), "refused while gw4 is cut off");
});
