// The plugin conformance kit on the root plugin, with real core services (store, identities, hub, an
// HTTPS front that never listens) provided the way the gateway provides them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { isStrataError, pluginConformanceSuite, TOKENS, type StrataConfig } from "../../../core/index.js";
import plugin, { RootPlugin, rootConfigSchema } from "../../../plugins/root/index.js";
import { coreFixture } from "../../support/core-fixture.js";

const core = coreFixture("strata-root-conf");

pluginConformanceSuite(plugin, {
  invalidConfig: { telemetry_log: { max_bytes: -1 } },
  provide(container) {
    container.register(TOKENS.Config, { useValue: { data_dir: join(core.dir, "data"), hub: "hub", device_id: "gw-root" } });
    container.register(TOKENS.Store, { useValue: core.store });
    container.register(TOKENS.Identities, { useValue: core.identities });
    container.register(TOKENS.Hub, { useValue: core.hub() });
    container.register(TOKENS.HttpFront, { useValue: core.front() });
  },
});

test("a gateway with a [parent] refuses to start the root plugin, naming the fix", async () => {
  const config = { data_dir: join(core.dir, "child"), parent: { hostname: "parent.local" } } as unknown as StrataConfig;
  const p = new RootPlugin(
    core.hub({ self: "gw-child", isRoot: false }), core.identities, core.store, core.front(),
    config, rootConfigSchema.parse({}), core.logger,
  );
  await assert.rejects(p.start(new AbortController().signal), (err: unknown) =>
    isStrataError(err, "STRATA_ROOT_HAS_PARENT") && /remove \[plugins\.root\]/.test((err as Error).message));
  await p.stop();
});

test("config: a segment larger than half the size budget is refused, naming the key", () => {
  const r = rootConfigSchema.safeParse({ telemetry_log: { max_bytes: 2 * 1024 * 1024, segment_bytes: 2 * 1024 * 1024 } });
  assert.equal(r.success, false);
  assert.deepEqual(r.error!.issues[0]!.path, ["telemetry_log", "segment_bytes"]);
  assert.equal(rootConfigSchema.parse({}).telemetry_log.max_age_hours, 168);
});
