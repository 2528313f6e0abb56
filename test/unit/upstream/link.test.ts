import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKey } from "../../../core/identity/sas.js";
import { silentLogger } from "../../../core/log.js";
import type { Message } from "../../../core/message.js";
import { ensureDevPki, type DevPki } from "../../../core/pki/index.js";
import type { Lease } from "../../../core/store/types.js";
import { UpstreamLink, type UpstreamLinkOptions } from "../../../core/upstream/link.js";
import type { UpstreamState } from "../../../core/upstream/types.js";
import { FakeParent, settle, type FakeParentOptions } from "./fake-parent.js";

const HUB = "testhub";
const CHILD = "gw-child";
const KEY = generateKey();

const pkiDir = mkdtempSync(join(tmpdir(), "strata-upstream-pki-"));
let pkiPromise: Promise<DevPki> | undefined;
function pki(): Promise<DevPki> {
  pkiPromise ??= ensureDevPki(pkiDir, { hostnames: ["localhost"], ips: ["127.0.0.1"] });
  return pkiPromise;
}
process.on("exit", () => rmSync(pkiDir, { recursive: true, force: true }));

/** Auth chains as the child's registry would give them: leaves under the child, `gone` out of scope. */
const chains: Record<string, string[]> = {
  d1: ["d1", CHILD],
  d2: ["d2", CHILD],
  "d1/m1": ["d1/m1", "d1", CHILD],
  [CHILD]: [CHILD],
};

async function parent(t: TestContext, opts: Partial<FakeParentOptions> = {}): Promise<FakeParent> {
  const p = await pki();
  const fake = await FakeParent.start({ cert: p.server.chain, key: p.server.key, hub: HUB, child: { id: CHILD, key: KEY }, ...opts });
  t.after(() => fake.stop());
  return fake;
}

async function link(t: TestContext, ports: { amqp: number; https?: number }, opts: Partial<UpstreamLinkOptions> = {}): Promise<UpstreamLink> {
  const p = await pki();
  const l = new UpstreamLink({
    self: CHILD,
    hub: HUB,
    parent: { hostname: "localhost", address: "127.0.0.1", amqp_port: ports.amqp, https_port: ports.https ?? 1, transport: "amqps" },
    ca: p.trustBundle,
    key: KEY,
    identities: { authChain: (id) => chains[id] },
    logger: silentLogger(),
    backoffMs: { min: 20, max: 200 },
    connectTimeoutMs: 3000,
    ...opts,
  });
  t.after(() => l.stop());
  l.start();
  return l;
}

let seq = 0;
function lease(source: string, attempts = 0, body = `m${seq}`): Lease {
  const n = ++seq;
  const message: Message = {
    id: `gw-child:${n}`, origin: "gw-leaf-gw", source, enqueuedTime: 1_700_000_000_000 + n, deadline: 1_800_000_000_000 + n, priority: 2,
    body: Buffer.from(body), properties: { seq: String(n) },
    systemProperties: { messageId: `mid-${n}`, contentType: "application/json", connectionDeviceId: source.split("/")[0]! },
  };
  return { message, endpoint: "$upstream", attempts };
}

function waitState(l: UpstreamLink, pred: (s: UpstreamState) => boolean): Promise<UpstreamState> {
  return new Promise((resolve) => {
    if (pred(l.state())) return resolve(l.state());
    const off = l.onState((s) => {
      if (pred(s)) {
        off();
        resolve(s);
      }
    });
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

test("authenticates with its own token on $cbs and sends each identity on its own link with its auth chain, in order", async (t) => {
  const fake = await parent(t);
  const l = await link(t, { amqp: fake.amqpPort });
  const leases = [lease("d1"), lease("d2"), lease("d1"), lease("d1/m1"), lease("d2"), lease("d1"), lease(CHILD)];
  const outcomes = await l.deliver(leases, new AbortController().signal);

  assert.deepEqual(outcomes, leases.map(() => "delivered"));
  assert.equal(fake.tokens.length, 1);
  assert.equal(fake.tokens[0]!.name, encodeURIComponent(`${HUB}/devices/${CHILD}`));
  const byAddress = (a: string) => fake.received.filter((r) => r.address === a);
  assert.deepEqual(byAddress("/devices/d1/messages/events").map((r) => r.message.id), [leases[0], leases[2], leases[5]].map((l) => l!.message.id));
  assert.deepEqual(byAddress("/devices/d1/messages/events").map((r) => r.authChain), ["d1;gw-child", "d1;gw-child", "d1;gw-child"]);
  assert.equal(byAddress("/devices/d1/modules/m1/messages/events")[0]!.authChain, "d1/m1;d1;gw-child");
  // The gateway's own messages go on a link with no chain (it is the authenticated identity).
  assert.equal(byAddress(`/devices/${CHILD}/messages/events`)[0]!.authChain, undefined);
  // Strata's metadata survives the hop exactly.
  const first = fake.received.find((r) => r.message.id === leases[0]!.message.id)!;
  assert.deepEqual(first.message, leases[0]!.message);
  assert.equal(l.state().sent, leases.length);
  assert.equal(l.state().status, "connected");
  assert.deepEqual(l.linkedIdentities().sort(), ["d1", "d1/m1", "d2", CHILD].sort());
});

test("permanent refusals dead-letter, transient ones retry; an identity refused at attach dead-letters after three tries", async (t) => {
  const fake = await parent(t, {
    decide: (r) => {
      const kind = r.message.properties.kind;
      if (kind === "big") return { reject: "amqp:link:message-size-exceeded" };
      if (kind === "busy") return { reject: "amqp:resource-limit-exceeded" };
      if (kind === "release") return "release";
      return "accept";
    },
    refuseLink: (id) => (id === "d2" ? "amqp:unauthorized-access" : undefined),
  });
  const l = await link(t, { amqp: fake.amqpPort });
  const mk = (kind: string, source = "d1", attempts = 0) => {
    const x = lease(source, attempts);
    x.message.properties.kind = kind;
    return x;
  };
  const outcomes = await l.deliver([mk("ok"), mk("big"), mk("busy"), mk("release"), mk("ok", "d2"), mk("ok", "d2", 2)], new AbortController().signal);
  assert.equal(outcomes[0], "delivered");
  assert.match((outcomes[1] as { deadLetter: string }).deadLetter, /message-size-exceeded/);
  assert.equal(outcomes[2], "retry");
  assert.equal(outcomes[3], "retry");
  assert.equal(outcomes[4], "retry", "first refusal of an identity is retried");
  assert.match((outcomes[5] as { deadLetter: string }).deadLetter, /unauthorized-access.*3 times/);
  assert.equal(l.state().refused, 2);
});

test("a message whose source left this gateway's scope is refused locally without opening a link", async (t) => {
  const fake = await parent(t);
  const l = await link(t, { amqp: fake.amqpPort });
  const outcomes = await l.deliver([lease("gone", 5)], new AbortController().signal);
  assert.match((outcomes[0] as { deadLetter: string }).deadLetter, /not in gw-child's scope/);
  assert.equal(fake.received.length, 0);
});

test("a refused token leaves the link offline with the reason, and it keeps retrying", async (t) => {
  const fake = await parent(t, { refuseToken: true });
  const l = await link(t, { amqp: fake.amqpPort });
  const s = await waitState(l, (x) => x.failedAttempts >= 2);
  assert.notEqual(s.status, "connected");
  assert.match(s.lastError ?? "", /refused this gateway's token.*401/);
});

test("deliver waits while the parent is unreachable and sends once it is up", async (t) => {
  const port = await freePort();
  const l = await link(t, { amqp: port });
  await waitState(l, (s) => s.failedAttempts >= 1);
  let settled = false;
  const pending = l.deliver([lease("d1"), lease("d1")], new AbortController().signal).then((o) => {
    settled = true;
    return o;
  });
  // 1. Still waiting after the link has failed again (no retry churn: deliver has not returned "retry").
  await waitState(l, (s) => s.failedAttempts >= 3);
  assert.equal(settled, false);
  // 2. The parent comes up on that port: the batch goes through.
  const fake = await parent(t, { ports: { amqp: port } });
  assert.deepEqual(await pending, ["delivered", "delivered"]);
  assert.equal(fake.received.length, 2);
});

test("a connection lost mid-batch retries what was unsettled, then reconnects", async (t) => {
  let hold = true;
  const fake = await parent(t, { decide: (r) => (hold && r.message.source === "d2" ? undefined : "accept") });
  const l = await link(t, { amqp: fake.amqpPort });
  const leases = [lease("d1"), lease("d2"), lease("d2")];
  const pending = l.deliver(leases, new AbortController().signal);
  // 1. d1's message is accepted; d2's two are held unsettled by the parent.
  await fake.waitFor(3);
  await waitFor(() => l.state().sent === 1);
  // 2. The parent's side of the connection dies: the unsettled ones come back as retries.
  fake.dropConnections();
  assert.deepEqual(await pending, ["delivered", "retry", "retry"]);
  // 3. The link reconnects by itself and the retried messages go through.
  const s = await waitState(l, (x) => x.status === "connected" && x.reconnects === 1);
  assert.equal(s.reconnects, 1);
  hold = false;
  assert.deepEqual(await l.deliver(leases.slice(1), new AbortController().signal), ["delivered", "delivered"]);
});

test("transport auto falls back to AMQP over WebSocket through the parent's HTTPS port", async (t) => {
  const closed = await freePort();
  const fake = await parent(t, { amqps: false, wss: true });
  const l = await link(t, { amqp: closed, https: fake.httpsPort }, {});
  (l as unknown as { opts: UpstreamLinkOptions }).opts.parent.transport = "auto";
  const s = await waitState(l, (x) => x.status === "connected");
  assert.equal(s.transport, "wss");
  assert.deepEqual(await l.deliver([lease("d1")], new AbortController().signal), ["delivered"]);
  assert.equal(fake.received[0]!.authChain, "d1;gw-child");
});

test("a parent whose certificate does not match the configured hostname is refused", async (t) => {
  const fake = await parent(t);
  const l2 = new UpstreamLink({
    self: CHILD, hub: HUB, ca: (await pki()).trustBundle, key: KEY, identities: { authChain: (id) => chains[id] }, logger: silentLogger(),
    parent: { hostname: "not-the-parent.example", address: "127.0.0.1", amqp_port: fake.amqpPort, https_port: 1, transport: "amqps" },
    backoffMs: { min: 20, max: 100 },
  });
  t.after(() => l2.stop());
  l2.start();
  const s = await waitState(l2, (x) => x.failedAttempts >= 1);
  assert.match(s.lastError ?? "", /altnames|ERR_TLS_CERT_ALTNAME_INVALID|Hostname/i);
  assert.equal(fake.tokens.length, 0, "no token is ever sent to an unverified parent");
});

test("stop() ends a waiting deliver with retries", async (t) => {
  const l = await link(t, { amqp: await freePort() });
  const pending = l.deliver([lease("d1")], new AbortController().signal);
  await l.stop();
  assert.deepEqual(await pending, ["retry"]);
  assert.equal(l.state().status, "stopped");
});

async function waitFor(pred: () => boolean): Promise<void> {
  while (!pred()) await new Promise((r) => setImmediate(r));
}
