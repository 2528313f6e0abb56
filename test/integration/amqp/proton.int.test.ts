import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { needPeer } from "../../support/peers.js";
import { amqpGateway, takeFromQueue } from "./helpers.js";

const run = promisify(execFile);
const SCRIPT = join(__dirname, "../../../../test/support/amqp_proton_client.py");
const skip = needPeer("python3-qpid-proton", "$(test/support/has-python3-proton)");

async function proton(args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const { stdout } = await run("/usr/bin/python3", [SCRIPT, JSON.stringify(args)], { timeout: 90_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

test("qpid-proton: hand-made SAS tokens on CBS, 1000 messages on one link, 10 identities on one connection", { skip }, async (t) => {
  const gw = await amqpGateway(t);
  const identities = [];
  for (let i = 0; i < 10; i++) identities.push({ id: `py${i}`, key: (await gw.addDevice(`py${i}`)).key });
  const out = await proton({ mode: "load", port: gw.port("amqp"), ca: gw.caFile, hub: gw.hubName, identities, count: 1000 });
  assert.deepEqual(out.statuses, Array(10).fill(200));
  assert.equal(out.accepted, 1000);
  assert.deepEqual(out.others, Array(9).fill("accepted"));
  const leases = await takeFromQueue(gw, "$upstream", 1009);
  const first = leases.filter((l) => l.message.source === "py0").map((l) => Number(l.message.properties.n));
  assert.deepEqual(first, [...Array(1000).keys()], "one link keeps its order into the store");
  assert.deepEqual(new Set(leases.map((l) => l.message.source)).size, 10);
  t.diagnostic(`1000 messages accepted in ${Number(out.seconds).toFixed(2)} s`);
});

test("qpid-proton: bad token, expired token, another identity's address, oversized message — each refused, the rest unharmed", { skip }, async (t) => {
  const gw = await amqpGateway(t);
  const me = await gw.addDevice("me");
  const other = await gw.addDevice("other");
  const out = await proton({ mode: "refusals", port: gw.port("amqp"), ca: gw.caFile, hub: gw.hubName, identities: [{ id: "me", key: me.key }, { id: "other", key: other.key }] });
  assert.equal(out.bad_token, 401);
  assert.equal(out.expired_token, 401);
  assert.equal(out.good_token, 200);
  assert.deepEqual(out.other_address, ["detached", "amqp:unauthorized-access"]);
  assert.deepEqual(out.oversized, ["rejected", "amqp:link:message-size-exceeded"]);
  assert.deepEqual(out.after, ["accepted", null]);
  const [lease] = await takeFromQueue(gw, "$upstream", 1);
  assert.equal(lease!.message.body.toString(), "still fine");
});
