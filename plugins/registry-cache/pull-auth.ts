import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Identities } from "../../core/index.js";

export interface PullUser {
  username: string;
  password: string;
}

export type PullDecision = { ok: true; who: string } | { ok: false; reason: string };

/**
 * Who may pull: a configured pull user, or a gateway or module identity presenting a SAS token as its
 * password (`username` = `device` or `device/module`), verified by core's Identities. Anonymous pulls only
 * when configured. Clients learn the scheme from `WWW-Authenticate: Basic realm=…` on the 401.
 */
export class PullAuth {
  constructor(
    private readonly users: readonly PullUser[],
    private readonly identities: Identities | undefined,
    private readonly anonymous: boolean,
  ) {}

  check(req: IncomingMessage): PullDecision {
    if (this.anonymous) return { ok: true, who: "anonymous" };
    const header = req.headers.authorization;
    if (!header) return { ok: false, reason: "no credentials" };
    const m = /^Basic\s+(\S+)$/i.exec(header);
    if (!m) return { ok: false, reason: "not basic credentials" };
    const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon <= 0) return { ok: false, reason: "malformed basic credentials" };
    const username = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    for (const u of this.users) {
      if (u.username === username && safeEqual(u.password, password)) return { ok: true, who: username };
    }
    if (this.identities && password.startsWith("SharedAccessSignature ")) {
      const r = this.identities.verifySas(username, password);
      if (!r.ok) return { ok: false, reason: `identity ${username}: ${r.reason}` };
      const record = this.identities.get(r.principal.id);
      if (!record || (!record.edge && record.moduleId === undefined)) {
        return { ok: false, reason: `identity ${username} is neither a gateway nor a module` };
      }
      return { ok: true, who: r.principal.id };
    }
    return { ok: false, reason: `unknown user ${username}` };
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
