import { readFileSync } from "node:fs";
import https from "node:https";
import { isIP } from "node:net";
import type { ClockReading, StrataConfig } from "../../core/index.js";

/** Where a gateway's metrics plugin answers its own clock (no credentials: a clock is no secret). */
export const CLOCK_PATH = "/$strata/metrics/clock";
/** SAS tokens tolerate 5 minutes of skew (the same thresholds as `strata check`'s clock line). */
export const CLOCK_WARN_MS = 60_000;
export const CLOCK_FAIL_MS = 300_000;

/**
 * This gateway's clock against its parent's, NTP style: offset = midpoint of the round trip − the parent's
 * time (positive: this gateway runs ahead). The parent's metrics plugin answers in milliseconds; a parent
 * without it still sends an HTTP Date header (1 s resolution). Undefined on the root or when the parent's
 * front cannot be reached (the check's parent lines say why).
 */
export async function probeParentClock(config: StrataConfig, now: () => number = Date.now): Promise<ClockReading | undefined> {
  const parent = config.parent;
  if (!parent) return undefined;
  const host = parent.address ?? parent.hostname;
  const ca = readFileSync(config.tls.ca_file, "utf8");
  const sent = now();
  const answer = await new Promise<{ status: number; date?: string; body: string } | undefined>((resolve) => {
    const req = https.get({ host, port: parent.https_port, path: CLOCK_PATH, ca, servername: isIP(parent.hostname) ? undefined : parent.hostname, timeout: 3000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { if (body.length < 1000) body += c; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ...(res.headers.date ? { date: res.headers.date } : {}), body }));
    });
    req.once("timeout", () => req.destroy());
    req.once("error", () => resolve(undefined));
  });
  const received = now();
  if (!answer) return undefined;
  const midpoint = (sent + received) / 2;
  const rttMs = received - sent;
  if (answer.status === 200) {
    const parentNow = (JSON.parse(answer.body) as { now?: unknown }).now;
    if (typeof parentNow === "number") return { offsetMs: Math.round(midpoint - parentNow), rttMs, at: received, source: "strata" };
  }
  const date = Date.parse(answer.date ?? "");
  // The Date header truncates to the second: its midpoint (+500 ms) is the best guess.
  return Number.isFinite(date) ? { offsetMs: Math.round(midpoint - (date + 500)), rttMs, at: received, source: "http-date" } : undefined;
}

/** "+12 ms", "-3.4 s", "+2 min". */
export function formatOffset(ms: number): string {
  const sign = ms < 0 ? "-" : "+";
  const a = Math.abs(ms);
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  if (a < 120_000) return `${sign}${(a / 1000).toFixed(1)} s`;
  return `${sign}${Math.round(a / 60_000)} min`;
}

export function clockVerdict(ms: number): "ok" | "warn" | "fail" {
  const a = Math.abs(ms);
  return a > CLOCK_FAIL_MS ? "fail" : a > CLOCK_WARN_MS ? "warn" : "ok";
}
