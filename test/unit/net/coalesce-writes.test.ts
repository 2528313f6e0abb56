import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect } from "node:net";
import { once } from "node:events";
import { coalesceWrites } from "../../../core/coalesce-writes.js";

test("many small corked writes reach the peer as the same bytes, in order, in one write", async (t) => {
  const received: Buffer[] = [];
  let ended!: () => void;
  const done = new Promise<void>((r) => (ended = r));
  const server = createServer((s) => s.on("data", (d: Buffer) => received.push(d)).on("end", () => ended()));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => server.close());
  const client = connect((server.address() as { port: number }).port, "127.0.0.1");
  await once(client, "connect");
  coalesceWrites(client);
  const raw = client as unknown as { _write: (...a: unknown[]) => void };
  let writes = 0;
  const write = raw._write.bind(client);
  raw._write = (...a) => { writes++; write(...a); };

  const sent: Buffer[] = [];
  client.cork();
  for (let i = 0; i < 50; i++) {
    const tiny = Buffer.from([i, i + 1]);
    const text = `é-${i}`;
    const big = Buffer.alloc(40 + i, i);
    client.write(tiny);
    client.write(text, "utf8");
    client.write(big);
    sent.push(tiny, Buffer.from(text, "utf8"), big);
  }
  process.nextTick(() => client.uncork());
  await new Promise((r) => setImmediate(r));
  client.end();
  await done;
  assert.equal(writes, 1, "150 chunks joined into one write");
  assert.deepEqual(Buffer.concat(received), Buffer.concat(sent));
});
