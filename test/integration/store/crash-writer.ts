/**
 * Child process for the durability tests (not a test file itself): N concurrent writers enqueue messages
 * into a LevelStore and report each acknowledged one.
 *
 *   node crash-writer.js <dir> <writers> <perWriter|0 = until killed> <sync 1|0> [markers]
 *
 * stdout gets `A <writer> <k> <strata id>` per acknowledged append, written synchronously (a pipe write of
 * a short line is atomic, so a kill -9 never leaves half a line). With `markers`, fd 3 gets `B <w> <k>`
 * right before each enqueue and `A <w> <k>` right after it resolves, for strace to order against syncs.
 */
import { writeSync as fsWriteSync } from "node:fs";
import pino from "pino";
import { LevelStore } from "../../../core/store/index.js";

/**
 * A synchronous write that waits out a full pipe: if anything made fd 1 non-blocking, a slow reader would
 * otherwise turn into EAGAIN. The line is written whole or the child fails loudly.
 */
function writeSync(fd: number, line: string): void {
  const buf = Buffer.from(line);
  let off = 0;
  while (off < buf.length) {
    try {
      off += fsWriteSync(fd, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
    }
  }
}

async function main(): Promise<void> {
  const [dir, writersArg, perArg, syncArg, markersArg] = process.argv.slice(2);
  const writers = Number(writersArg);
  const per = Number(perArg);
  const markers = markersArg === "markers";
  const store = new LevelStore({
    path: dir, gatewayId: "crash", quotaBytes: 1 << 30, logger: pino({ level: "silent" }, { write: () => undefined }), sync: syncArg === "1", sweepIntervalMs: 0,
  });
  await store.open();
  const body = Buffer.alloc(300, 7);
  const writer = async (w: number): Promise<void> => {
    for (let k = 0; per === 0 || k < per; k++) {
      const now = Date.now();
      const id = store.nextId();
      if (markers) writeSync(3, `B ${w} ${k}\n`);
      await store.enqueue({
        id, origin: "crash", source: `w${w}`, enqueuedTime: now, deadline: now + 3600_000, priority: w % 10,
        body, properties: { k: String(k) }, systemProperties: {},
      }, ["up"]);
      if (markers) writeSync(3, `A ${w} ${k}\n`);
      writeSync(1, `A ${w} ${k} ${id}\n`);
    }
  };
  writeSync(1, "READY\n");
  await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
  await store.close();
  writeSync(1, "DONE\n");
}

main().catch((err: unknown) => {
  writeSync(2, `crash-writer failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
