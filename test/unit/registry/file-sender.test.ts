import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sendFileRange } from "../../../plugins/registry-cache/file-sender.js";

/** An http server answering every request with bytes [start, end] of `file` through sendFileRange; records each handle and the send's end. */
async function serve(file: string, start: number, end: number): Promise<{ port: number; sends: { fh: FileHandle; done: Promise<void> }[]; close(): Promise<void> }> {
  const sends: { fh: FileHandle; done: Promise<void> }[] = [];
  const server = http.createServer((req, res) => {
    void (async () => {
      const fh = await open(file, "r");
      res.writeHead(200, { "content-length": end - start + 1 });
      sends.push({ fh, done: sendFileRange(fh, start, end, res) });
    })();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as AddressInfo).port, sends, close: () => new Promise((r) => server.close(() => r())) };
}

function get(port: number, o: { abortAfter?: number } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on("data", (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (o.abortAfter !== undefined && n >= o.abortAfter) {
          req.destroy();
          resolve(Buffer.concat(chunks));
        }
      });
      res.on("end", () => resolve(Buffer.concat(chunks)));
      res.on("error", () => resolve(Buffer.concat(chunks)));
    });
    req.on("error", (e) => (o.abortAfter !== undefined ? undefined : reject(e)));
  });
}

const file = join(mkdtempSync(join(tmpdir(), "strata-sender-")), "blob");
const bytes = randomBytes(3 * 256 * 1024 + 5); // chunk boundaries inside, a short last chunk
writeFileSync(file, bytes);

test("the whole file, and ranges across chunk boundaries, byte for byte; the handle is closed after", async () => {
  for (const [start, end] of [[0, bytes.length - 1], [256 * 1024 - 3, 2 * 256 * 1024 + 2], [bytes.length - 1, bytes.length - 1]] as const) {
    const s = await serve(file, start, end);
    try {
      const body = await get(s.port);
      assert.ok(body.equals(bytes.subarray(start, end + 1)), `bytes ${start}-${end}`);
      await s.sends[0]!.done;
      assert.equal(s.sends[0]!.fh.fd, -1, "handle closed");
    } finally {
      await s.close();
    }
  }
});

test("a client that goes away mid-body ends the send and closes the handle", async () => {
  const big = join(mkdtempSync(join(tmpdir(), "strata-sender-")), "big");
  writeFileSync(big, randomBytes(64 * 1024 * 1024));
  const s = await serve(big, 0, 64 * 1024 * 1024 - 1);
  try {
    const got = await get(s.port, { abortAfter: 1 });
    assert.ok(got.length < 64 * 1024 * 1024);
    await s.sends[0]!.done;
    assert.equal(s.sends[0]!.fh.fd, -1, "handle closed");
  } finally {
    await s.close();
  }
});

test("a file shorter than the range asked for destroys the response instead of a short success", async () => {
  const s = await serve(file, 0, bytes.length + 100);
  try {
    const body = await get(s.port);
    assert.ok(body.length <= bytes.length);
    await s.sends[0]!.done;
    assert.equal(s.sends[0]!.fh.fd, -1);
  } finally {
    await s.close();
  }
});
