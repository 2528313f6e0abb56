import { test } from "node:test";
import assert from "node:assert/strict";
import { accumulatePatch, diffProperties } from "../../../core/hub/twin-sync.js";
import { mergePatch } from "../../../core/hub/twins.js";

test("accumulated reported patches keep nulls and end with the last value of every key", () => {
  const pending: Record<string, unknown> = {};
  accumulatePatch(pending, { temp: 1, site: { a: 1, b: 2 }, gone: 5 });
  accumulatePatch(pending, { temp: 2, site: { b: null }, gone: null, $version: 9 });
  assert.deepEqual(pending, { temp: 2, site: { a: 1, b: null }, gone: null });
});

test("a desired diff applied to the cached properties gives the parent's properties", () => {
  const cached = { $version: 3, mode: "a", keep: 1, nested: { x: 1, y: 2 }, old: true };
  const parent = { $version: 7, mode: "b", keep: 1, nested: { x: 1, z: 3 }, added: [1, 2] };
  const diff = diffProperties(cached, parent);
  assert.deepEqual(diff, { mode: "b", nested: { z: 3, y: null }, added: [1, 2], old: null });
  const applied: Record<string, unknown> = structuredClone(cached);
  mergePatch(applied, diff);
  const { $version: _a, ...got } = applied;
  const { $version: _b, ...want } = parent;
  assert.deepEqual(got, want);
  assert.deepEqual(diffProperties(parent, parent), {});
});
