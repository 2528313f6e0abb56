// Poison messages end to end (127.77.32.x): a root whose AMQP head takes at most 20 kB per message, a child
// whose MQTT head takes 256 KiB. A leaf's 100 kB message can never reach the root: the child dead-letters it
// (a counter, a log line, visible with its reason on `GET /$strata/deadletters`), and that leaf's next
// messages and another leaf's messages keep flowing, in order.
import "reflect-metadata";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { deviceTokenSigner, GatewayClient } from "../../core/scope/https-client.js";
import { DEADLETTERS_PATH, type DeadLettersAnswer } from "../../core/scope/types.js";
import { buildTree, runCli, treeUnavailable, type Tree } from "../support/tree.js";
import { MqttLeaf } from "../support/chaos.js";
import { tally } from "./leaves.js";

const skip = treeUnavailable();
let tree: Tree;
const leaves: MqttLeaf[] = [];

before(async () => {
  if (skip) return;
  tree = await buildTree({
    subnet: "127.77.32",
    gateways: [{ id: "root", plugins: { amqp: { max_message_bytes: 20_000 } } }, { id: "gw", parent: "root" }],
    leaves: [{ id: "poisoned", gateway: "gw" }, { id: "healthy", gateway: "gw" }],
  });
  await tree.startAll();
});

after(async () => {
  for (const l of leaves) await l.close();
  await tree?.cleanup();
});

test("a message too large for the parent is dead-lettered at the child; the same and other identities keep flowing", { skip }, async (t) => {
  const gw = tree.gw("gw");
  const open = (id: string) => MqttLeaf.open({ id, hub: tree.hub, key: tree.keys.get(id)!, host: gw.address, caPem: tree.caPem });
  const poisoned = await open("poisoned");
  const healthy = await open("healthy");
  leaves.push(poisoned, healthy);
  const mark = gw.lines.length;

  await poisoned.send(0, 5, 1);
  // seq 5: 100 kB, under the child's MQTT limit (256 KiB), over the root's AMQP limit (20 kB).
  await poisoned.client.publishAsync(`devices/poisoned/messages/events/${encodeURIComponent("$.mid")}=poisoned-5&seq=5`,
    Buffer.alloc(100_000, 0x61), { qos: 1 });
  await Promise.all([poisoned.send(6, 11, 1), healthy.send(0, 10, 2)]);

  const logged = await gw.waitForLog("message dead-lettered", 30_000, mark);
  assert.equal(logged.source, "poisoned");
  assert.match(String(logged.reason), /message-size-exceeded/);

  const records = await tree.followTelemetry((r) => r.length >= 20, 30_000);
  const { seqs, duplicates } = tally(records);
  assert.deepEqual(duplicates, []);
  assert.deepEqual(seqs.get("poisoned"), [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]);
  assert.deepEqual(seqs.get("healthy"), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

  // The operator's view: the child's own identity asks the child's front.
  const client = new GatewayClient({
    host: gw.address, port: 443, hostname: gw.address, ca: tree.caPem,
    token: deviceTokenSigner(tree.hub, "gw", tree.keys.get("gw")!),
  });
  t.after(() => client.close());
  const res = await client.request("GET", `${DEADLETTERS_PATH}?limit=10`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const answer = res.body as DeadLettersAnswer;
  assert.equal(answer.deadLettered, 1);
  assert.equal(answer.deadLetters.length, 1);
  const [dead] = answer.deadLetters;
  assert.equal(dead!.source, "poisoned");
  assert.equal(dead!.messageId, "poisoned-5");
  assert.equal(dead!.endpoint, "$upstream");
  assert.equal(dead!.bytes, 100_000);
  assert.match(dead!.reason, /message-size-exceeded/);

  // The same view from the command line, as an operator on the child runs it.
  const cli = JSON.parse(await runCli(["deadletters", "list", "--json", "--config", gw.configFile])) as DeadLettersAnswer;
  assert.equal(cli.deadLettered, 1);
  assert.match(cli.deadLetters[0]!.reason, /message-size-exceeded/);
  const human = await runCli(["deadletters", "list", "--config", gw.configFile]);
  assert.match(human, /1 dead-lettered since start/);
  assert.match(human, /poisoned .*message-size-exceeded/);

  // Another identity's token (a leaf's) is refused.
  const leafClient = new GatewayClient({
    host: gw.address, port: 443, hostname: gw.address, ca: tree.caPem,
    token: deviceTokenSigner(tree.hub, "healthy", tree.keys.get("healthy")!),
  });
  t.after(() => leafClient.close());
  assert.equal((await leafClient.request("GET", DEADLETTERS_PATH)).status, 403);
});
