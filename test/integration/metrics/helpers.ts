import { spawn } from "node:child_process";
import https from "node:https";
import { setTimeout as delay } from "node:timers/promises";
import forge from "node-forge";
import { signSas } from "../../../core/index.js";
import metricsPlugin from "../../../plugins/metrics/index.js";
import type { TestGateway } from "../../support/gateway.js";

/** The metrics plugin entry with fast reports for tests. */
export function metricsEntry(settings: Record<string, unknown> = {}) {
  return { module: metricsPlugin, settings: { report_interval_secs: 0.2, ...settings } };
}

export interface Answer {
  status: number;
  type: string;
  body: string;
}

/** GET on a test gateway's front; `auth` is sent as Authorization. */
export function get(gw: TestGateway, path: string, auth?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: gw.address, port: gw.port("https"), path, ca: gw.caPem, servername: "localhost", headers: auth ? { authorization: auth } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"] ?? ""), body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.once("error", reject);
  });
}

export function ownerToken(gw: TestGateway): string {
  return `${signSas({ resource: gw.hubName, key: gw.ownerKey, keyName: "iothubowner", expirySecs: Math.floor(Date.now() / 1000) + 600 })}`;
}

/**
 * Polls `probe` until it returns a value (not undefined) or `ms` pass; the gateways report on their own
 * timers, so the test waits for the condition they produce rather than for a fixed time.
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await delay(50);
  }
}

/** `promtool check metrics` on the exposition text: resolves with its exit code and output. */
export function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn("promtool", ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    p.stdout.on("data", (d: Buffer) => { output += d.toString(); });
    p.stderr.on("data", (d: Buffer) => { output += d.toString(); });
    p.once("error", reject);
    p.once("close", (code) => resolve({ code: code ?? 1, output }));
    p.stdin.end(text);
  });
}

/** A self-signed certificate that expired yesterday (1024-bit RSA: quick in pure JS, enough for the check). */
export function expiredCertificate(): string {
  const keys = forge.pki.rsa.generateKeyPair(1024);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = "01";
  cert.validity.notBefore = new Date(Date.now() - 10 * 86_400_000);
  cert.validity.notAfter = new Date(Date.now() - 86_400_000);
  const attrs = [{ name: "commonName", value: "localhost" }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([{ name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}
