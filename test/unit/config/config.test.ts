import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isStrataError, StrataAggregateError } from "../../../core/errors.js";
import { embeddedDefaultConfig, loadConfig, parseConfig, readSecret } from "../../../core/config/index.js";

const MINIMAL = `
hub = "plant.azure-devices.net"
device_id = "gw-l3"
hostname = "gw-l3.plant.local"
data_dir = "data"

[tls]
cert_file = "pki/server.crt"
key_file = "pki/server.key"
ca_file = "pki/ca.crt"
`;

const parse = (text: string) => parseConfig(text, { source: "strata.toml", baseDir: "/etc/strata" });

/** The problem lines of a STRATA_CONFIG_INVALID error. */
function problems(text: string): string[] {
  try {
    parse(text);
  } catch (e) {
    assert.ok(e instanceof StrataAggregateError && e.code === "STRATA_CONFIG_INVALID", String(e));
    return e.errors.map((x) => x.message);
  }
  assert.fail("config was accepted");
}

test("a minimal root config gets every default and absolute paths", () => {
  const c = parse(MINIMAL);
  assert.equal(c.data_dir, "/etc/strata/data");
  assert.equal(c.tls.ca_file, "/etc/strata/pki/ca.crt");
  assert.deepEqual(c.listen, { address: "127.0.0.1", mqtt: 8883, amqp: 5671, https: 443, max_tls_handshakes: 32 });
  assert.equal(c.store.default_ttl_secs, 7200);
  assert.equal(c.parent, undefined);
  assert.deepEqual(c.plugins, {});
  assert.equal(c.log.level, "info");
});

test("a child config: parent defaults, routes in both shapes, raw plugin sections", () => {
  const c = parse(`${MINIMAL}
[identity]
key_file = "/run/credentials/strata/identity.key"
[parent]
hostname = "gw-l4.plant.local"
address = "127.0.0.4"
[listen]
mqtt = 0
[routes]
up = "FROM /messages/* INTO $upstream"
alarms = { route = "FROM /messages/* WHERE alarm = true INTO $upstream", priority = 0, ttl_secs = 86400 }
[plugins.mqtt]
port = 1
essential = true
`);
  assert.deepEqual(c.parent, { hostname: "gw-l4.plant.local", address: "127.0.0.4", amqp_port: 5671, https_port: 443, transport: "auto" });
  assert.equal(c.identity?.key_file, "/run/credentials/strata/identity.key");
  assert.equal(c.listen.mqtt, 0, "0 means any free port");
  assert.equal(c.routes.up, "FROM /messages/* INTO $upstream");
  assert.deepEqual(c.routes.alarms, { route: "FROM /messages/* WHERE alarm = true INTO $upstream", priority: 0, ttl_secs: 86400 });
  assert.deepEqual(c.plugins.mqtt, { port: 1, essential: true });
});

test("every problem is reported at once, each naming its key path and what is expected", () => {
  const lines = problems(`
hub = 42
device_id = "gw 1"
hostnme = "typo"
data_dir = "data"
[tls]
cert_file = "a"
key_file = "b"
[listen]
mqtt = 70000
amqp = "5671"
[parent]
hostname = "p"
transport = "tcp"
[routes]
r = { route = "FROM x", priority = 12 }
`);
  const expect = [
    /^hub: must be a string, got number 42$/,
    /^device_id: must be 1–128 characters/,
    /^hostname: is required \(expected a string\)$/,
    /^hostnme: unknown key/,
    /^tls\.ca_file: is required/,
    /^listen\.mqtt: must be <= 65535, got number 70000$/,
    /^listen\.amqp: must be a number, got the string "5671"$/,
    /^parent\.transport: must be one of "amqps", "wss", "auto"/,
    /^routes\.r\.priority: must be <= 9/,
  ];
  for (const re of expect) assert.ok(lines.some((l) => re.test(l)), `${re} in:\n${lines.join("\n")}`);
  assert.equal(lines.length, expect.length, lines.join("\n"));
});

test("root-only and child-only keys are checked against each other", () => {
  const lines = problems(`${MINIMAL}
[parent]
hostname = "p"
[service]
owner_key_file = "owner.key"
`);
  assert.ok(lines.some((l) => /^service: only the root/.test(l)), lines.join("\n"));
  assert.ok(lines.some((l) => /^identity: is required when \[parent\] is set/.test(l)), lines.join("\n"));
});

test("negative and fractional ports are refused", () => {
  assert.ok(problems(`${MINIMAL}\n[listen]\nhttps = -1\n`).some((l) => /^listen\.https: must be >= 0/.test(l)));
  assert.ok(problems(`${MINIMAL}\n[listen]\nhttps = 4.5\n`).some((l) => /^listen\.https: must be an integer/.test(l)));
});

test("bad TOML is reported with its line and column", () => {
  assert.throws(() => parse(`hub = "h"\ndevice_id = "d"\n[tls\ncert_file = "x"\n`), (e: unknown) =>
    isStrataError(e, "STRATA_CONFIG_TOML") && /^strata\.toml: invalid TOML at line 3, column \d+/.test((e as Error).message));
});

test("loadConfig resolves relative paths against the file's folder and names an unreadable file", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "strata-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "strata.toml"), MINIMAL);
  assert.equal(loadConfig(join(dir, "strata.toml")).tls.key_file, join(dir, "pki/server.key"));
  assert.throws(() => loadConfig(join(dir, "missing.toml")), (e: unknown) =>
    isStrataError(e, "STRATA_CONFIG_READ") && (e as Error).message.includes(join(dir, "missing.toml")));
});

test("readSecret refuses a file group or others can read, naming the key and chmod 600", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "strata-secret-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "identity.key");
  writeFileSync(file, "c2VjcmV0LWtleS1ieXRlcw==\n");
  chmodSync(file, 0o640);
  assert.throws(() => readSecret(file, "identity.key_file"), (e: unknown) => {
    assert.ok(isStrataError(e, "STRATA_CONFIG_SECRET_MODE"));
    assert.match(e.message, /^identity\.key_file: .*mode 0640.*chmod 600 /);
    assert.ok(!e.message.includes("c2VjcmV0"), "the secret never appears in the error");
    return true;
  });
  chmodSync(file, 0o604);
  assert.throws(() => readSecret(file, "identity.key_file"), (e: unknown) => isStrataError(e, "STRATA_CONFIG_SECRET_MODE"));
  chmodSync(file, 0o600);
  assert.equal(readSecret(file, "identity.key_file"), "c2VjcmV0LWtleS1ieXRlcw==");
  assert.throws(() => readSecret(join(dir, "nope.key"), "service.owner_key_file"), (e: unknown) =>
    isStrataError(e, "STRATA_CONFIG_SECRET_READ") && /^service\.owner_key_file: /.test((e as Error).message));
  mkdirSync(join(dir, "adir"));
  assert.throws(() => readSecret(join(dir, "adir"), "tls.key_file"), (e: unknown) => isStrataError(e, "STRATA_CONFIG_SECRET_READ"));
});

test("the embedded default is a root gateway on localhost with files under the base folder", () => {
  const c = embeddedDefaultConfig("/srv/x/.strata");
  assert.equal(c.hub, "localhost");
  assert.equal(c.device_id, "strata-root");
  assert.equal(c.hostname, "localhost");
  assert.equal(c.parent, undefined);
  assert.deepEqual(c.listen, { address: "127.0.0.1", mqtt: 8883, amqp: 5671, https: 443, max_tls_handshakes: 32 });
  assert.equal(c.data_dir, "/srv/x/.strata/data");
  assert.match(c.tls.ca_file, /^\/srv\/x\/\.strata\/pki\//);
  assert.equal(c.service?.owner_key_file, "/srv/x/.strata/secrets/iothubowner.key");
});

test("[store] commit_window_ms, never read by the store, is refused by name (group commit has no timer window)", () => {
  const lines = problems(`${MINIMAL}\n[store]\ncommit_window_ms = 2\n`);
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(lines[0]!, /^store\.commit_window_ms: unknown key/);
});
