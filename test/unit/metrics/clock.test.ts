// A gateway's clock against its parent's. The parent here is a fake (an HTTPS server answering as the metrics
// plugin does, with a clock set back): a process's real clock cannot be skewed in a test.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { GatewayState, StrataConfig } from "../../../core/index.js";
import { ensureDevPki, type DevPki } from "../../../core/pki/index.js";
import { CLOCK_PATH, probeParentClock, renderTree, renderTreeCheck, type TreeView } from "../../../plugins/metrics/index.js";

const dir = mkdtempSync(join(tmpdir(), "strata-clock-"));
let pki: DevPki;
before(async () => { pki = await ensureDevPki(join(dir, "pki"), { hostnames: ["localhost"], ips: ["127.0.0.1"] }); });
after(() => rmSync(dir, { recursive: true, force: true }));

/** A fake parent whose clock runs `behindMs` behind ours; `withPlugin` false: 404 with only a Date header. */
async function fakeParent(behindMs: number, withPlugin: boolean): Promise<{ server: Server; config: StrataConfig }> {
  const server = createServer({ cert: pki.server.chain, key: pki.server.key }, (req, res) => {
    const now = Date.now() - behindMs;
    res.sendDate = false;
    res.setHeader("date", new Date(now).toUTCString());
    if (withPlugin && req.url === CLOCK_PATH) res.end(JSON.stringify({ now }));
    else { res.statusCode = 404; res.end("{}"); }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const config = { parent: { hostname: "localhost", address: "127.0.0.1", https_port: port, amqp_port: 1, transport: "amqps" }, tls: { ca_file: pki.paths.trustBundle } } as unknown as StrataConfig;
  return { server, config };
}

test("the offset against a parent 42 s behind: ms from its metrics plugin, ±1 s from a Date header", async (t) => {
  const precise = await fakeParent(42_000, true);
  t.after(() => precise.server.close());
  const a = await probeParentClock(precise.config);
  assert.equal(a?.source, "strata");
  assert.ok(Math.abs(a!.offsetMs - 42_000) <= a!.rttMs / 2 + 5, JSON.stringify(a));

  const dateOnly = await fakeParent(42_000, false);
  t.after(() => dateOnly.server.close());
  const b = await probeParentClock(dateOnly.config);
  assert.equal(b?.source, "http-date");
  assert.ok(Math.abs(b!.offsetMs - 42_000) <= 1000, JSON.stringify(b));

  assert.equal(await probeParentClock({ ...precise.config, parent: undefined } as StrataConfig), undefined, "the root has no parent clock");
  assert.equal(await probeParentClock({ ...precise.config, parent: { ...precise.config.parent!, https_port: 1 } }), undefined, "unreachable: no reading");
});

function state(device: string, over: Partial<GatewayState> = {}): GatewayState {
  return {
    v: 1, device, at: 1000, root: device === "root", connected: 0, upstream: { depth: 0, oldestAgeMs: 0 }, queued: { depth: 0, oldestAgeMs: 0 },
    drainPerSec: 0, dropped: { ttl: 0, quota: 0, "dead-letter": 0 }, deadLettered: 0, usedBytes: 0, quotaBytes: 1, accepted: {},
    checks: { at: 1000, lines: [{ verdict: "ok", what: "config", detail: "valid" }] }, ...over,
  };
}

test("strata tree shows each gateway's clock offset; check --tree fails one beyond what SAS tokens allow", () => {
  const view: TreeView = {
    root: "root", now: 2000, nodes: [
      { device: "root", depth: 0, children: 2, state: state("root"), seenAt: 2000 },
      { device: "gw2", parent: "root", depth: 1, children: 0, state: state("gw2", { clock: { offsetMs: 12, rttMs: 4, at: 1000, source: "strata" } }), seenAt: 1000 },
      { device: "gw3", parent: "root", depth: 1, children: 0, state: state("gw3", { clock: { offsetMs: -400_000, rttMs: 4, at: 1000, source: "strata" } }), seenAt: 1000 },
    ],
  };
  const lines = renderTree(view).split("\n");
  assert.match(lines[0]!, /\s+LAST SEEN\s+CLOCK$/);
  assert.match(lines[1]!, /^root\s.*now\s+-$/);
  assert.match(lines[2]!, /└ gw2\s.*\s\+12 ms$/);
  assert.match(lines[3]!, /└ gw3\s.*\s-7 min$/);
  const check = renderTreeCheck(view);
  assert.equal(check.failed, true);
  assert.match(check.text, /^gw2: ok/m);
  assert.match(check.text, /^ {2}ok {4}clock offset +\+12 ms from the parent \(±2 ms, measured 1 s ago\)$/m);
  assert.match(check.text, /^gw3: fail/m);
  assert.match(check.text, /fail {2}clock offset +-7 min from the parent .*synchronise the clock \(NTP\)$/m);
});
