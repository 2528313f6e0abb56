// The translation conformance kit from `strata`, run against this package: the same kit core's own
// plugins pass. `npm test` in this folder (with strata, tsyringe and zod installed next to it).
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { once } from "node:events";
import { Listeners, TOKENS, translationConformanceSuite, type KitGateway } from "strata";
import plugin, { jsonDatagramConverter, PLUGIN_NAME } from "../src/index.js";

/** Sends one datagram and returns the gateway's answer (`ok` or `error <code>`). */
async function send(k: KitGateway, text: string): Promise<string> {
  const sock = dgram.createSocket("udp4");
  try {
    sock.send(text, k.port(PLUGIN_NAME), k.address);
    const [answer] = (await once(sock, "message")) as [Buffer];
    return answer.toString();
  } finally {
    sock.close();
  }
}

translationConformanceSuite(plugin, {
  converters: [jsonDatagramConverter],
  settings: { port: 0 },
  pluginKit: {
    config: { port: 0 },
    invalidConfig: { port: -1 },
    provide(c) {
      c.register(TOKENS.Config, { useValue: { listen: { address: "127.0.0.1", mqtt: 0, amqp: 0, https: 0 } } });
      c.register(TOKENS.Hub, { useValue: { attach: () => ({ changed() {}, detach() {} }) } });
      c.register(TOKENS.Identities, { useValue: { self: "gw", on: () => () => undefined } });
      c.register(TOKENS.Listeners, { useValue: new Listeners() });
    },
  },
  driver: {
    async sendValid(k, deviceId) {
      assert.equal(await send(k, JSON.stringify({ id: deviceId, rpm: 1000 })), "ok");
    },
    async sendMalformed(k) {
      assert.match(await send(k, "{nope"), /^error STRATA_TRANSLATION_MALFORMED/);
    },
  },
});
