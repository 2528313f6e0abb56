import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { bindError, listenOn } from "../../../core/http/index.js";
import { isStrataError } from "../../../core/errors.js";
import { startFront, testPki } from "./support.js";
import { HttpFront } from "../../../core/http/index.js";

const FIX = "use another loopback address with --address 127.0.0.N, or set the ports in a config file [listen]";

test("listenOn resolves the bound port, and a port already in use is a STRATA_LISTEN_PORT_IN_USE naming it", async (t) => {
  const first = net.createServer();
  t.after(() => new Promise<void>((resolve) => first.close(() => resolve())));
  const bound = await listenOn(first, "127.0.0.1", 0, "mqtt head");
  assert.ok(bound.port > 0);
  assert.equal(bound.address, "127.0.0.1");

  const second = net.createServer();
  await assert.rejects(listenOn(second, "127.0.0.1", bound.port, "mqtt head"), (err) => {
    assert.ok(isStrataError(err, "STRATA_LISTEN_PORT_IN_USE"));
    assert.match(err.message, new RegExp(`mqtt head cannot listen on 127\\.0\\.0\\.1:${bound.port}`));
    assert.match(err.message, new RegExp(`port ${bound.port} is already in use`));
    assert.ok(err.message.includes(FIX));
    assert.equal((err.cause as NodeJS.ErrnoException).code, "EADDRINUSE");
    return true;
  });
  assert.equal(second.listening, false, "never a silent move to another port");
});

test("HttpFront.listen on a busy port rejects with the port and the fix", async (t) => {
  const { port } = await startFront(t);
  const pki = await testPki();
  const other = new HttpFront({ tls: { cert: pki.server.chain, key: pki.server.key }, address: "127.0.0.1", port });
  t.after(() => other.close());
  await assert.rejects(other.listen(), (err) => {
    assert.ok(isStrataError(err, "STRATA_LISTEN_PORT_IN_USE"));
    assert.match(err.message, new RegExp(`https front cannot listen on 127\\.0\\.0\\.1:${port}`));
    return true;
  });
});

test("an address this host does not have is STRATA_LISTEN_ADDRESS_UNAVAILABLE", async () => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): never assigned to a real interface.
  await assert.rejects(listenOn(net.createServer(), "192.0.2.1", 0, "amqp head"), (err) => {
    assert.ok(isStrataError(err, "STRATA_LISTEN_ADDRESS_UNAVAILABLE"));
    assert.match(err.message, /192\.0\.2\.1/);
    assert.ok(err.message.includes(FIX));
    return true;
  });
});

test("bindError maps EACCES to STRATA_LISTEN_PORT_DENIED and anything else to STRATA_LISTEN_FAILED", () => {
  const denied = bindError("https front", "0.0.0.0", 443, Object.assign(new Error("listen EACCES"), { code: "EACCES" }));
  assert.equal(denied.code, "STRATA_LISTEN_PORT_DENIED");
  assert.match(denied.message, /port 443/);
  assert.match(denied.message, /CAP_NET_BIND_SERVICE/);
  assert.ok(denied.message.includes(FIX));
  const other = bindError("https front", "127.0.0.1", 443, Object.assign(new Error("boom"), { code: "EMFILE" }));
  assert.equal(other.code, "STRATA_LISTEN_FAILED");
  assert.match(other.message, /port 443.*boom/);
});
