import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { IdentityRecord } from "../../../core/identity/types.js";
import { decide, deriveDeviceKey, locateProvisioningFile, provisionStatusLine, readState, registrationToken, sasProofProblem, writeState, type EnrollmentGroup, type ProvisionState } from "../../../core/provision/index.js";

const GROUP_KEY = Buffer.alloc(32, 7).toString("base64");

test("the derived key is HMAC-SHA256(base64decode(group key), registration id), as DPS group enrollment", () => {
  const expected = createHmac("sha256", Buffer.alloc(32, 7)).update("line3-gw").digest("base64");
  assert.equal(deriveDeviceKey(GROUP_KEY, "line3-gw"), expected);
  assert.notEqual(deriveDeviceKey(GROUP_KEY, "line4-gw"), expected);
});

test("a registration token proves the key for its id and hub only, and expires", () => {
  const key = deriveDeviceKey(GROUP_KEY, "gw1");
  const token = registrationToken("plant", "gw1", key, 300, 1_000_000_000);
  assert.equal(sasProofProblem(token, "plant", "gw1", [key], 1_000_000_000), undefined);
  assert.match(sasProofProblem(token, "plant", "gw2", [key], 1_000_000_000) ?? "", /expected "plant\/registrations\/gw2"/);
  assert.match(sasProofProblem(token, "plant", "gw1", [deriveDeviceKey(GROUP_KEY, "gw2")], 1_000_000_000) ?? "", /does not match/);
  assert.match(sasProofProblem(token, "plant", "gw1", [key], 1_000_000_000 + 3_600_000) ?? "", /expired/);
});

function registry(records: Partial<IdentityRecord>[]) {
  const map = new Map(records.map((r) => [r.id!, { deviceId: r.id!, status: "enabled", edge: true, auth: { type: "sas", primaryKey: "a", secondaryKey: "b" }, generation: 1, updatedAt: 0, ...r } as IdentityRecord]));
  return {
    self: "root",
    get: (id: string) => map.get(id),
    put: async (r: Omit<IdentityRecord, "generation" | "updatedAt">) => { const full = { ...r, generation: 1, updatedAt: 0 } as IdentityRecord; map.set(r.id, full); return full; },
    verifyCertificate: () => ({ ok: false as const, reason: "bad-certificate" as const, detail: "n/a" }),
  };
}
const group: EnrollmentGroup = { name: "g", primaryKey: GROUP_KEY, secondaryKey: Buffer.alloc(32, 9).toString("base64"), status: "enabled", edge: true, createdAt: 0 };

test("decide: the path must match the hierarchy; placement is where it came through; an id made otherwise is a conflict", async () => {
  const ids = registry([{ id: "p1" }, { id: "p2", parent: "p1" }, { id: "manual", parent: "p2" }]);
  const ctx = { hub: "plant", identities: ids as never, group: async (n: string) => (n === "g" ? group : undefined) };
  const req = (id: string, path: string[], key = deriveDeviceKey(GROUP_KEY, id)) => ({ registrationId: id, group: "g", sas: registrationToken("plant", id, key), path });

  const forged = await decide(req("gw", ["p1", "p2"]), ctx);
  assert.equal(forged.ok, false);
  assert.equal(!forged.ok && forged.status, 403, "p1 is not p2's child");

  const ok = await decide(req("gw", ["p2", "p1"]), ctx);
  assert.ok(ok.ok);
  assert.equal(ok.record.parent, "p2");
  assert.equal(ok.created, true);
  const again = await decide(req("gw", ["p2", "p1"]), ctx);
  assert.ok(again.ok && !again.created, "idempotent");
  // The secondary group key's derivation is accepted too (key rotation).
  const secondary = await decide(req("gw", ["p2", "p1"], deriveDeviceKey(group.secondaryKey, "gw")), ctx);
  assert.ok(secondary.ok);

  const moved = await decide(req("gw", ["p1"]), ctx);
  assert.equal(!moved.ok && moved.status, 409, "no silent move");
  const taken = await decide(req("manual", ["p2", "p1"]), ctx);
  assert.equal(!taken.ok && taken.status, 409, "an identity not made from the group is not taken over");
  const direct = await decide(req("gw-top", []), ctx);
  assert.ok(direct.ok && direct.record.parent === "root", "with an empty path the root is the parent");
  const self = await decide(req("p2", ["p2", "p1"]), ctx);
  assert.equal(!self.ok && self.status, 409);
});

test("the provisioning file is found on the command line first, then removable media, then fixed places", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "strata-locate-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cmdline = join(dir, "cmdline");
  const media = join(dir, "media");
  const fixed = join(dir, "image.toml");
  writeFileSync(fixed, "");
  writeFileSync(cmdline, "quiet root=/dev/sda2\n");
  const o = { cmdline, removableRoots: [media], fixed: [join(dir, "missing.toml"), fixed] };
  assert.deepEqual(locateProvisioningFile(o), { path: fixed, from: "image" });
  mkdirSync(join(media, "operator", "USBSTICK"), { recursive: true });
  writeFileSync(join(media, "operator", "USBSTICK", "strata-provision.toml"), "");
  assert.deepEqual(locateProvisioningFile(o), { path: join(media, "operator", "USBSTICK", "strata-provision.toml"), from: "removable media" });
  writeFileSync(cmdline, "quiet strata.provision=/run/prov.toml root=/dev/sda2\n");
  assert.deepEqual(locateProvisioningFile(o), { path: "/run/prov.toml", from: "kernel command line" });
  assert.deepEqual(locateProvisioningFile({ ...o, file: "x.toml" })?.from, "--file");
  assert.equal(locateProvisioningFile({ cmdline: join(dir, "none"), removableRoots: [], fixed: [] }), undefined);
});

test("state file: atomic, mode 0600, damage reported with the fix, status line for strata check", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "strata-state-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "sub", "provision.json");
  assert.equal(readState(file), undefined);
  assert.match(provisionStatusLine(file).detail, /no provisioning state/);
  const s: ProvisionState = { version: 1, step: "registering", source: "/x", sha256: "h", deviceId: "gw", attestation: "enrollment-group", attempts: 2, startedAt: "", updatedAt: "", lastError: "p2 answered 401: nope" };
  writeState(file, s);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(readState(file)?.attempts, 2);
  const line = provisionStatusLine(file);
  assert.equal(line.verdict, "fail");
  assert.match(line.detail, /step registering of gw .*answered 401/);
  writeState(file, { ...s, step: "done", lastError: undefined, parent: "p2" });
  assert.equal(provisionStatusLine(file).verdict, "ok");
  writeFileSync(file, "{not json");
  assert.throws(() => readState(file), /damaged .* remove it to provision again/);
});
