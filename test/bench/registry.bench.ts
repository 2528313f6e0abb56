import { Worker } from "node:worker_threads";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import httpsFront from "../../plugins/https-front/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { startDistribution } from "../integration/registry/support/distribution.js";
import { OciLayout, pushLayout, type SyntheticImage } from "../integration/registry/support/oci.js";
import { PULL_PASSWORD, PULL_USER, secretFile, startCacheGateway } from "../integration/registry/support/harness.js";

/**
 * `npm run bench -- registry [--layers N] [--layer-mib M] [--concurrency C] [--warm-rounds R]`: one run, one
 * upstream Distribution and one image; both caches over TLS with the same certificate. Cold and warm pull
 * throughput through Strata's root cache and through Distribution 2.8 in proxy mode; upstream bytes per cold
 * pull at concurrency 1 and C; CPU-seconds per GiB per front on a 5-front path (this process runs all five
 * gateways). Pulls are parallel blob GETs over node:https (skopeo tops out far below either cache). Warm is the
 * median of R single pulls, Strata's and Distribution's taken in turn so both see the same machine load, with
 * the servers' CPU for them (robust to a noisy machine where throughput is not).
 */
export async function run(args: string[]): Promise<void> {
  const opt = (name: string, def: number): number => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : def;
  };
  const layers = opt("layers", 5);
  const layerMib = opt("layer-mib", 32);
  const concurrency = opt("concurrency", 4);
  const warmRounds = opt("warm-rounds", 7);
  const upstream = await startDistribution();
  const layout = new OciLayout(mkdtempSync(join(tmpdir(), "strata-bench-oci-")));
  // One image per cold measurement (each must be cold in both caches): strata c1, distribution c1, strata cN, distribution cN.
  const images: Record<string, SyntheticImage> = {};
  for (const name of ["s1", "d1", "sn", "dn", "chain"]) {
    images[name] = layout.addImage(Array.from({ length: layers }, () => layerMib << 20));
    layout.tag(images[name]!.manifest, name);
    await pushLayout(layout, name, upstream.hostPort, `bench/${name}`);
  }
  const imageBytes = (img: SyntheticImage): number => [img.config, ...img.layers].reduce((s, b) => s + b.size, 0);
  const root = await startCacheGateway(upstream.url);
  const tls = root.gw.config.tls;
  const proxy = await startDistribution({ proxyRemote: upstream.url, tls: { certFile: tls.cert_file, keyFile: tls.key_file } });
  const gateways: TestGateway[] = [root];
  try {
    const strata = { port: root.port("https"), auth: `Basic ${Buffer.from(`${PULL_USER}:${PULL_PASSWORD}`).toString("base64")}` };
    const distribution = { port: proxy.port, auth: undefined };
    const ca = root.caPem;
    const upstreamBytes = (from: number, img: SyntheticImage): number => {
      const sizes = new Map([img.config, ...img.layers].map((b) => [b.digest, b.size]));
      return upstream.requests().slice(from).filter((r) => r.method === "GET").reduce((s, r) => s + (sizes.get(r.path.split("/").pop() ?? "") ?? 0), 0);
    };
    const results: string[] = [];
    const cold = async (target: { port: number; auth: string | undefined }, name: string, pulls: number): Promise<{ mibs: number; up: number; gets: number }> => {
      const img = images[name]!;
      const mark = upstream.requests().length;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: pulls }, () => pull(target.port, ca, `bench/${name}`, img, target.auth)));
      const secs = (performance.now() - t0) / 1000;
      const gets = upstream.requests().slice(mark).filter((r) => r.method === "GET" && r.path.includes("/blobs/")).length;
      return { mibs: (imageBytes(img) / 2 ** 20) * pulls / secs, up: upstreamBytes(mark, img) / imageBytes(img), gets };
    };
    // Server CPU of the warm pulls. Distribution: its process. Strata: this process less the client's worker
    // thread, less what this process spends around a pull of Distribution's (worker start and stop, idle gateway).
    const warmCpu = { strata: 0, distribution: 0, aroundDistribution: 0, bytes: 0 };
    const warmOnce = async (target: { port: number; auth: string | undefined }, name: string): Promise<number> => {
      const img = images[name]!;
      const side = target === strata ? "strata" : "distribution";
      const own0 = cpuMs(process.cpuUsage());
      const dist0 = processCpuMs(proxy.pid);
      const t0 = performance.now();
      const clientCpu = await pull(target.port, ca, `bench/${name}`, img, target.auth);
      const secs = (performance.now() - t0) / 1000;
      const own = cpuMs(process.cpuUsage()) - own0 - clientCpu;
      if (side === "strata") {
        warmCpu.strata += own;
        warmCpu.bytes += imageBytes(img);
      } else {
        warmCpu.distribution += processCpuMs(proxy.pid) - dist0;
        warmCpu.aroundDistribution += own;
      }
      return imageBytes(img) / 2 ** 20 / secs;
    };
    for (const [s, d, pulls] of [["s1", "d1", 1], ["sn", "dn", concurrency]] as const) {
      const sc = await cold(strata, s, pulls);
      const dc = await cold(distribution, d, pulls);
      const sw: number[] = [];
      const dw: number[] = [];
      for (let i = 0; i < warmRounds; i++) {
        sw.push(await warmOnce(strata, s));
        dw.push(await warmOnce(distribution, d));
      }
      const row = (label: string, c: { mibs: number; up: number; gets: number }, w: number): string =>
        `${label.padEnd(34)} pulls=${pulls} cold ${c.mibs.toFixed(0).padStart(5)} MiB/s  warm ${w.toFixed(0).padStart(5)} MiB/s  upstream ${c.up.toFixed(2)}x image in ${c.gets} blob GETs`;
      results.push(row("strata root cache", sc, median(sw)), row("distribution 2.8 proxy", dc, median(dw)));
      results.push(`  warm (median of ${warmRounds}) strata/distribution = ${(median(sw) / median(dw)).toFixed(2)}x; strata ${sw.map((v) => v.toFixed(0)).join(" ")}; distribution ${dw.map((v) => v.toFixed(0)).join(" ")}`);
    }
    const perGib = (ms: number): string => (ms / 1000 / (warmCpu.bytes / 2 ** 30)).toFixed(2);
    results.push(`warm server CPU (all warm pulls above): strata ${perGib(warmCpu.strata - warmCpu.aroundDistribution)} s/GiB, distribution ${perGib(warmCpu.distribution)} s/GiB`);
    // 5-front path: root cache + 4 fronts below, warm pulls at the bottom; all in this process.
    let parent = root;
    for (let i = 2; i <= 5; i++) {
      const { key } = await parent.addDevice(`gw${i}`, { edge: true });
      const child = await startTestGateway({
        deviceId: `gw${i}`,
        extraPlugins: [{ module: httpsFront, settings: {} }],
        config: { service: undefined, identity: { key_file: secretFile(key) }, parent: { hostname: "localhost", address: "127.0.0.1", https_port: parent.port("https"), amqp_port: 9, transport: "amqps" } },
      });
      gateways.push(child);
      parent = child;
    }
    const bottom = { port: parent.port("https"), auth: strata.auth };
    await pull(bottom.port, ca, "bench/chain", images.chain!, bottom.auth);
    const rounds = 3;
    const cpu0 = process.cpuUsage();
    const t2 = performance.now();
    for (let i = 0; i < rounds; i++) await pull(bottom.port, ca, "bench/chain", images.chain!, bottom.auth);
    const secs = (performance.now() - t2) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const gib = (imageBytes(images.chain!) * rounds) / 2 ** 30;
    const cpuSecs = (cpu.user + cpu.system) / 1e6;
    results.push(`5-front path (warm, bottom)        ${((gib * 1024) / secs).toFixed(0)} MiB/s; CPU ${(cpuSecs / gib).toFixed(2)} s/GiB for the whole process (root + 4 fronts + client), ${(cpuSecs / gib / 5).toFixed(2)} s/GiB per front`);
    process.stdout.write(`registry bench: image ${layers} x ${layerMib} MiB (+config), TLS on both caches, node ${process.version}\n${results.join("\n")}\n`);
  } finally {
    for (const g of gateways.reverse()) await g.stop({ remove: true });
    await proxy.close();
    await upstream.close();
  }
}

function cpuMs(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1000;
}

/** utime + stime of another process, from /proc (clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * Pulls an image as a client would, minus unpacking: manifest, then every blob in parallel. Runs in a worker
 * thread so the client's TLS work does not share the gateway's event loop (Distribution runs in its own process).
 */
function pull(port: number, ca: string, repo: string, img: SyntheticImage, auth: string | undefined): Promise<number> {
  const paths = [img.config, ...img.layers].map((b) => `/v2/${repo}/blobs/${b.digest}`);
  const worker = new Worker(PULL_WORKER, { eval: true, workerData: { port, ca, auth, manifest: `/v2/${repo}/manifests/${img.manifest.digest}`, paths } });
  return new Promise((resolve, reject) => {
    worker.once("message", (m: { error?: string; cpuMs?: number }) => (m.error ? reject(new Error(m.error)) : resolve(m.cpuMs ?? 0)));
    worker.once("error", reject);
  });
}

const PULL_WORKER = `
const { parentPort, workerData: w } = require("node:worker_threads");
const https = require("node:https");
const agent = new https.Agent({ keepAlive: true, ca: w.ca, maxSockets: 16 });
function get(path, accept) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (w.auth) headers.authorization = w.auth;
    if (accept) headers.accept = accept;
    const req = https.request({ host: "127.0.0.1", port: w.port, path, agent, headers }, (res) => {
      res.on("data", () => {});
      res.on("end", () => (res.statusCode === 200 && res.complete ? resolve() : reject(new Error("GET " + path + ": " + res.statusCode))));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}
get(w.manifest, "application/vnd.oci.image.manifest.v1+json")
  .then(() => Promise.all(w.paths.map((p) => get(p))))
  .then(() => { agent.destroy(); const u = process.threadCpuUsage(); parentPort.postMessage({ cpuMs: (u.user + u.system) / 1000 }); }, (e) => { agent.destroy(); parentPort.postMessage({ error: String(e && e.message) }); });
`;
