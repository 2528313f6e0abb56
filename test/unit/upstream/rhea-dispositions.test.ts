import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import rhea from "rhea";
import { patchRheaDispositions, settlementRuns } from "../../../core/upstream/rhea-dispositions.js";

const acc = { state: { descriptor: { value: 0x24 } } };
const rej = { state: { descriptor: { value: 0x25 } } };
const rel = { state: { descriptor: { value: 0x26 } } };

test("settlement runs keep accepts together and isolate every other outcome", () => {
  assert.deepEqual(settlementRuns([acc, acc, rej, acc, rel, rel, acc, acc]), [[acc, acc], [rej], [acc], [rel], [rel], [acc, acc]]);
  assert.deepEqual(settlementRuns([]), []);
  assert.deepEqual(settlementRuns([rej]), [[rej]]);
});

test("an accept and a reject settled in the same tick reach the sender as an accept and a reject", async (t) => {
  patchRheaDispositions();
  // 1. A receiver that settles three deliveries in one tick: accept, reject, accept.
  const server = rhea.create_container({ id: "parent" });
  const held: rhea.Delivery[] = [];
  server.on("receiver_open", (ctx) => ctx.receiver!.add_credit(10));
  server.on("message", (ctx) => {
    held.push(ctx.delivery!);
    if (held.length === 3) {
      held[0]!.accept();
      held[1]!.reject({ condition: "amqp:internal-error", description: "not stored" });
      held[2]!.accept();
    }
  });
  const listener = server.listen({ port: 0, host: "127.0.0.1", autoaccept: false, credit_window: 0 } as Parameters<typeof server.listen>[0]);
  await new Promise<void>((r) => listener.once("listening", () => r()));
  t.after(() => listener.close());
  const port = (listener.address() as AddressInfo).port;
  // 2. A sender that records the outcome of each message.
  const client = rhea.create_container({ id: "child" });
  const conn = client.connect({ host: "127.0.0.1", port, reconnect: false });
  t.after(() => conn.close());
  const outcomes = new Map<number, string>();
  const done = new Promise<void>((resolve) => {
    const check = () => { if (outcomes.size === 3) resolve(); };
    client.on("accepted", (ctx) => { outcomes.set(Number(ctx.delivery!.tag.toString()), "accepted"); check(); });
    client.on("rejected", (ctx) => { outcomes.set(Number(ctx.delivery!.tag.toString()), "rejected"); check(); });
  });
  const sender = conn.open_sender({ target: { address: "events" }, autosettle: true });
  sender.once("sendable", () => {
    for (let i = 1; i <= 3; i++) sender.send({ body: `m${i}` }, Buffer.from(String(i)));
  });
  await done;
  // rhea 3.0.5 unpatched reports 1..2 as accepted: the refused message would be dropped by the sender.
  assert.deepEqual([...outcomes].sort(), [[1, "accepted"], [2, "rejected"], [3, "accepted"]]);
});
