// `npm run bench -- translation [devices=100] [seconds=5] [window=32]`: line-protocol messages/s into the hub,
// durable (each `ok` ack follows the hub's durable write), from N TCP devices each keeping `window` lines in flight.
import net from "node:net";
import { once } from "node:events";
import plugin, { TCP_LISTENER } from "../../plugins/line-protocol/index.js";
import { startTestGateway } from "../support/gateway.js";

export async function run(args: string[]): Promise<void> {
  const devices = Number(args[0] ?? 100);
  const seconds = Number(args[1] ?? 5);
  const window = Number(args[2] ?? 32);
  const tg = await startTestGateway({ extraPlugins: [{ module: plugin, settings: { tcp_port: 0, udp: false, ack: true } }] });
  const port = tg.port(TCP_LISTENER);
  const latencies: number[] = [];
  let acked = 0;
  let running = true;
  const sockets = await Promise.all(Array.from({ length: devices }, async (_, i) => {
    const s = net.connect(port, "127.0.0.1");
    await once(s, "connect");
    s.setNoDelay(true);
    const sent: number[] = [];
    let buffered = "";
    let seq = 0;
    const send = (): void => {
      sent.push(performance.now());
      s.write(`{"deviceId":"bench-${i}","seq":${seq++},"temperature":21.5}\n`);
    };
    s.setEncoding("utf8");
    s.on("data", (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const t0 = sent.shift();
        if (line !== "ok") throw new Error(`device ${i}: ${line}`);
        acked++;
        if (t0 !== undefined && latencies.length < 1_000_000) latencies.push(performance.now() - t0);
        if (running) send();
      }
    });
    return { s, start: () => { for (let k = 0; k < window; k++) send(); } };
  }));
  const t0 = performance.now();
  for (const x of sockets) x.start();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  const elapsed = (performance.now() - t0) / 1000;
  const count = acked;
  for (const x of sockets) x.s.destroy();
  await tg.stop({ remove: true });
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]?.toFixed(2);
  process.stdout.write(
    `translation (line-protocol, TCP, durable): ${devices} devices, window ${window}, ${elapsed.toFixed(1)} s: ` +
    `${Math.round(count / elapsed)} messages/s acked; ack latency p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms\n`,
  );
}
