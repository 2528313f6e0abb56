import { createServer, type Socket } from "node:net";
import mqttPacket, { type IPublishPacket, type Packet } from "mqtt-packet";
import type { AfterHook } from "../../support/mosquitto.js";

/**
 * A scripted MQTT 5 broker for the cases a real one will not produce on demand: a PUBACK that never comes,
 * or one with a refusal reason code. `reply(publish, index)` decides per PUBLISH: a reason code to PUBACK
 * with, or undefined to stay silent.
 */
export async function fakeBroker(
  t: AfterHook,
  reply: (publish: IPublishPacket, index: number) => number | undefined,
  connack: { receiveMaximum?: number; maximumPacketSize?: number } = {},
) {
  const publishes: IPublishPacket[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  /** Acknowledge a publish the `reply` script left pending. */
  let ackLater: (publish: IPublishPacket) => void = () => {};
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    const send = (packet: Packet) => socket.write(mqttPacket.generate(packet, { protocolVersion: 5 }));
    parser.on("packet", (packet: Packet) => {
      if (packet.cmd === "connect") send({ cmd: "connack", sessionPresent: false, reasonCode: 0, properties: connack });
      else if (packet.cmd === "pingreq") send({ cmd: "pingresp" });
      else if (packet.cmd === "publish") {
        const index = publishes.push(packet) - 1;
        const code = reply(packet, index);
        if (code !== undefined) send({ cmd: "puback", messageId: packet.messageId!, reasonCode: code });
        ackLater = (p) => send({ cmd: "puback", messageId: p.messageId!, reasonCode: 0 });
        for (const w of [...waiters]) if (publishes.length >= w.n) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
    socket.on("data", (chunk) => parser.parse(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  t.after(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  const port = (server.address() as { port: number }).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    publishes,
    /** Resolves once `n` publishes have arrived in all. */
    waitPublishes: (n: number) => (publishes.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
    ack: (p: IPublishPacket) => ackLater(p),
  };
}
