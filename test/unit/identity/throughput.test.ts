// How many SAS verifications per second the hot path does (printed as a diagnostic; asserts only a floor
// far below the measured figure so a slow CI box does not fail it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { deviceToken, keysOf, makeRegistry, NOW, sasDevice } from "./setup.js";

test("verifySas throughput", async (t) => {
  const devices = Array.from({ length: 1000 }, (_, i) => sasDevice(`d${i}`));
  const { registry } = await makeRegistry(devices);
  const tokens = devices.map((d) => deviceToken(d.id, keysOf(d).secondaryKey));
  const n = 20_000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = registry.verifySas(`d${i % 1000}`, tokens[i % 1000]!, NOW);
    if (!r.ok) assert.fail(r.detail);
  }
  const perSec = Math.round(n / (Number(process.hrtime.bigint() - start) / 1e9));
  t.diagnostic(`verifySas: ${perSec} verifications/s (secondary key, so both keys hashed)`);
  assert.ok(perSec > 2000, `${perSec}/s`);
});
