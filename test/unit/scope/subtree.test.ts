import assert from "node:assert/strict";
import { test } from "node:test";
import { ancestorsOf, isWithin, subtreeOf } from "../../../core/scope/index.js";
import { device, edge, registry, tree } from "./setup.js";

test("a child's subtree is every identity whose chain passes through it, the child and modules included", async () => {
  const reg = await registry("root", tree());
  const lookup = (id: string) => reg.get(id);
  const ids = (child: string) => subtreeOf(child, reg.list(), "root", lookup).map((r) => r.id).sort();
  assert.deepEqual(ids("gwA"), ["gwA", "gwA1", "leafA", "leafA/m", "leafA1"]);
  assert.deepEqual(ids("gwB"), ["gwB", "leafB"]);
  assert.deepEqual(ids("gwA1"), ["gwA1", "leafA1"]);
  assert.deepEqual(ids("nope"), [], "an unknown child has an empty subtree");
});

test("on a middle gateway the subtree is computed against its own view (its own record hangs below its parent)", async () => {
  const reg = await registry("gwA", [edge("gwA", "root"), edge("gwA1", "gwA"), device("leafA1", "gwA1"), device("leafA", "gwA")]);
  const ids = subtreeOf("gwA1", reg.list(), "gwA", (id) => reg.get(id)).map((r) => r.id).sort();
  assert.deepEqual(ids, ["gwA1", "leafA1"]);
});

test("isWithin and ancestorsOf walk parent links (a module through its device)", async () => {
  const reg = await registry("root", tree());
  const lookup = (id: string) => reg.get(id);
  assert.equal(isWithin("leafA1", "gwA", "root", lookup), true);
  assert.equal(isWithin("gwA", "gwA", "root", lookup), true);
  assert.equal(isWithin("leafB", "gwA", "root", lookup), false);
  assert.deepEqual(ancestorsOf(reg.get("leafA/m")!, lookup), ["leafA", "gwA"]);
  assert.deepEqual(ancestorsOf(reg.get("leafA1")!, lookup, "gwA1"), ["gwA1"]);
});

