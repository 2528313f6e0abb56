import assert from "node:assert/strict";
import { test } from "node:test";
import rhea from "rhea";
import { signSas, type Message } from "../../../core/index.js";
import { amqpFromMessage } from "../../../plugins/amqp/convert.js";
import { amqpGateway, closeBeforeStop, takeFromQueue } from "./helpers.js";
import { RheaClient, sendAndSettle } from "./rhea-client.js";

const CHAIN = "com.microsoft:auth-chain";

function token(hub: string, id: string, key: string, secs = 600): string {
  const [d, m] = id.split("/");
  return signSas({ resource: m ? `${hub}/devices/${d}/modules/${m}` : `${hub}/devices/${d}`, key, expirySecs: Math.floor(Date.now() / 1000) + secs });
}

test("child-style connection: one CBS token for the child, links for its leaves with auth chains", async (t) => {
  const gw = await amqpGateway(t);
  const child = await gw.addDevice("child1", { edge: true });
  await gw.addDevice("leaf1", { parent: "child1" });
  await gw.addDevice("stranger");
  const client = await RheaClient.connect(gw);
  closeBeforeStop(gw, () => client.close());

  // 1. The child authenticates itself only.
  assert.equal(await client.putToken(token(gw.hubName, "child1", child.key)), 200);

  await t.test("a good chain is forwarded with its Strata id kept; the duplicate is accepted and dropped", async () => {
    const sender = await client.sender("/devices/leaf1/messages/events", { [CHAIN]: "leaf1;child1" });
    const m: Message = {
      id: "child1:7", origin: "child1", source: "leaf1", enqueuedTime: Date.now() - 1000, deadline: Date.now() + 3_600_000, priority: 0,
      body: Buffer.from("from-leaf"), properties: { p: "1" }, systemProperties: { messageId: "leaf-m1", connectionDeviceId: "leaf1" },
    };
    assert.deepEqual(await sendAndSettle(sender, amqpFromMessage(m, { strata: true })), { outcome: "accepted" });
    assert.deepEqual(await sendAndSettle(sender, amqpFromMessage(m, { strata: true })), { outcome: "accepted" });
    const [lease] = await takeFromQueue(gw, "$upstream", 1);
    assert.equal(lease!.message.id, "child1:7", "the origin's id travels unchanged");
    assert.equal(lease!.message.origin, "child1");
    assert.equal(lease!.message.source, "leaf1");
    assert.equal(lease!.message.body.toString(), "from-leaf");
    // 2. Nothing more in the queue: the duplicate was dropped by id.
    assert.equal((await gw.gw.store.queue("$upstream").lease(10)).length, 0);
    assert.equal(gw.gw.hub.isConnected("leaf1"), true, "the leaf is attached to the hub on behalf of the child");
  });

  await t.test("a forged chain (the leaf is not under the child) is refused with unauthorized-access", async () => {
    await assert.rejects(client.sender("/devices/stranger/messages/events", { [CHAIN]: "stranger;child1" }), (e: { condition?: string }) => e.condition === "amqp:unauthorized-access");
  });

  await t.test("a chain whose actor has not authenticated on this connection is refused", async () => {
    await assert.rejects(client.sender("/devices/leaf1/messages/events", { [CHAIN]: "leaf1;other-gw" }), (e: { condition?: string }) => e.condition === "amqp:unauthorized-access");
  });

  await t.test("another identity's address without a chain is refused; the connection and other links live on", async () => {
    await assert.rejects(client.sender("/devices/stranger/messages/events"), (e: { condition?: string }) => e.condition === "amqp:unauthorized-access");
    const sender = await client.sender("/devices/child1/messages/events");
    assert.deepEqual(await sendAndSettle(sender, { body: "still fine" }), { outcome: "accepted" });
  });
});

test("refusals: bad token, expired token, oversized message — each with its AMQP condition, nothing else disturbed", async (t) => {
  const gw = await amqpGateway(t);
  const d1 = await gw.addDevice("d1");
  await gw.addDevice("d2");
  const client = await RheaClient.connect(gw);
  closeBeforeStop(gw, () => client.close());
  assert.equal(await client.putToken(token(gw.hubName, "d2", d1.key)), 401, "d2's token signed with d1's key");
  assert.equal(await client.putToken(token(gw.hubName, "d1", d1.key, -3600)), 401, "expired (past the 5 min skew)");
  assert.equal(await client.putToken(token(gw.hubName, "d1", d1.key)), 200);
  const sender = await client.sender("/devices/d1/messages/events");
  const big = { body: rhea.message.data_section(Buffer.alloc(1024 * 1024 + 1, 1)) };
  assert.deepEqual(await sendAndSettle(sender, big), { outcome: "rejected", condition: "amqp:link:message-size-exceeded" });
  // The same link takes the next message.
  assert.deepEqual(await sendAndSettle(sender, { body: "small" }), { outcome: "accepted" });
  const [lease] = await takeFromQueue(gw, "$upstream", 1);
  assert.equal(lease!.message.body.toString(), "small");
});

test("a token that expires without renewal ends that identity's links", async (t) => {
  const gw = await amqpGateway(t);
  const d1 = await gw.addDevice("d1");
  const client = await RheaClient.connect(gw);
  closeBeforeStop(gw, () => client.close());
  // se has one-second resolution: a token valid for 2 s expires while the link is open.
  assert.equal(await client.putToken(token(gw.hubName, "d1", d1.key, 2)), 200);
  const receiver = await client.receiver("/devices/d1/messages/devicebound");
  const detached = new Promise<string | undefined>((resolve) => {
    receiver.once("receiver_error" as never, () => resolve((receiver.error as { condition?: string } | undefined)?.condition));
  });
  assert.equal(await detached, "amqp:unauthorized-access");
  assert.equal(client.connection.is_open(), true, "only the links end, not the connection");
});
