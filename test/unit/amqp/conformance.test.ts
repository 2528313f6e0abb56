import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { ensureDevPki, Listeners, Pki, pluginConformanceSuite, TOKENS, type DevPki } from "../../../core/index.js";
import plugin from "../../../plugins/amqp/index.js";

// The kit starts the plugin for real: a TLS listener on port 0 with a development certificate, and core
// services reduced to what start/stop touch (the root's feedback drain registers with the hub).
const dir = mkdtempSync(join(tmpdir(), "strata-amqp-conformance-"));
let dev: DevPki | undefined;
before(async () => {
  dev = await ensureDevPki(dir, { hostnames: ["localhost"], ips: ["127.0.0.1"] });
});
after(() => rmSync(dir, { recursive: true, force: true }));

pluginConformanceSuite(plugin, {
  invalidConfig: { max_message_bytes: -1 },
  provide(c) {
    c.register(TOKENS.Config, { useValue: { listen: { address: "127.0.0.1", mqtt: 0, amqp: 0, https: 0 } } });
    c.register(TOKENS.Hub, { useValue: { consume: () => () => undefined } });
    c.register(TOKENS.Identities, { useValue: { on: () => () => undefined } });
    c.register(TOKENS.HttpFront, { useValue: { websocket: () => () => undefined } });
    c.register(TOKENS.Pki, {
      useValue: new Pki({ cert: dev!.server.cert, key: dev!.server.key, chain: dev!.server.chain, trustBundle: dev!.trustBundle }),
    });
    c.register(TOKENS.Listeners, { useValue: new Listeners() });
  },
});
