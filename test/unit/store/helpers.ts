import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { silentLogger } from "../../../core/log.js";
import type { Message } from "../../../core/message.js";
import { LevelStore, type LevelStoreOptions } from "../../../core/store/index.js";

export const HOUR = 3600_000;

/** A controllable clock for TTL tests. */
export class Clock {
  constructor(public t = 1_700_000_000_000) {}
  readonly now = (): number => this.t;
}

export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "strata-store-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens a store in `dir` (a fresh temp dir when omitted) and closes it after the test. */
export async function openStore(t: TestContext, opts: Partial<LevelStoreOptions> = {}): Promise<LevelStore> {
  const store = new LevelStore({
    path: opts.path ?? join(tempDir(t), "db"), gatewayId: "gw1", quotaBytes: 64 * 1024 * 1024,
    logger: silentLogger(), sweepIntervalMs: 0, ...opts,
  });
  await store.open();
  t.after(() => store.close());
  return store;
}

let counter = 0;
export function msg(source: string, n: number, over: Partial<Message> = {}, now = Date.now()): Message {
  return {
    id: over.id ?? `origin:${source}:${n}:${counter++}`,
    origin: "origin", source, enqueuedTime: now, deadline: now + 2 * HOUR, priority: 5,
    body: Buffer.from(JSON.stringify({ source, n })), properties: { n: String(n) }, systemProperties: {},
    ...over,
  };
}

export function nOf(m: Message): number {
  return Number(m.properties.n);
}
