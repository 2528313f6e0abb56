import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import type { Identities } from "../../core/index.js";
import type { MetricsConfig } from "./config.js";

export type AccessDecision = { ok: true } | { ok: false; status: 401 | 403; reason: string };

/** Loopback peers: 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith("::ffff:") ? address.slice(7) : address;
  if (a === "::1") return true;
  return isIP(a) === 4 && a.startsWith("127.");
}

/** Who may read metrics, the tree and the status page (see MetricsConfig.access). */
export class AccessGuard {
  constructor(
    private readonly mode: MetricsConfig["access"],
    private readonly identities: Pick<Identities, "verifyService">,
    private readonly bearer: Buffer | undefined,
  ) {}

  check(req: Pick<IncomingMessage, "headers" | "socket">): AccessDecision {
    const auth = req.headers.authorization ?? "";
    if (auth.startsWith("SharedAccessSignature ")) {
      const r = this.identities.verifyService(auth, "ServiceConnect");
      return r.ok ? { ok: true } : { ok: false, status: 401, reason: `owner token refused: ${r.detail}` };
    }
    if (this.mode === "local") {
      return isLoopback(req.socket.remoteAddress)
        ? { ok: true }
        : { ok: false, status: 403, reason: "metrics answer loopback peers only (plugins.metrics.access = \"local\"); scrape from the gateway itself, or set access = \"token\"" };
    }
    if (this.mode === "token" && this.bearer && auth.startsWith("Bearer ")) {
      const given = Buffer.from(auth.slice(7).trim());
      if (given.length === this.bearer.length && timingSafeEqual(given, this.bearer)) return { ok: true };
      return { ok: false, status: 401, reason: "bearer token does not match plugins.metrics.token_file" };
    }
    return { ok: false, status: 401, reason: this.mode === "token" ? "send Authorization: Bearer <token from plugins.metrics.token_file>" : "send an iothubowner SAS token in Authorization" };
  }
}
