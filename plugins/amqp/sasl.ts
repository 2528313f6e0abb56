import type { AuthResult, Identities } from "../../core/index.js";

/**
 * SASL PLAIN as IoT Hub takes it: username `{d}[/modules/{m}]@sas.{hub}` (device or module) or
 * `{policy}@sas.root.{hub}` (service), password the SAS token. rhea hands a mechanism only the response, so the
 * mechanism object keeps the verdict and the head reads it from the connection once SASL is done.
 */
export class PlainMechanism {
  outcome: boolean | undefined;
  username: string | undefined;
  result: AuthResult | undefined;

  constructor(private readonly identities: Identities) {}

  start(response: Buffer | undefined): void {
    const fields = splitPlain(response);
    if (!fields) {
      this.result = { ok: false, reason: "malformed", detail: "SASL PLAIN response is not authzid\\0username\\0password" };
      this.outcome = false;
      return;
    }
    this.username = fields.username;
    this.result = verifyPlain(this.identities, fields.username, fields.password);
    this.outcome = this.result.ok;
  }
}

export function splitPlain(response: Buffer | undefined): { username: string; password: string } | undefined {
  if (!response) return undefined;
  const first = response.indexOf(0);
  const second = first < 0 ? -1 : response.indexOf(0, first + 1);
  if (first < 0 || second < 0) return undefined;
  return { username: response.toString("utf8", first + 1, second), password: response.toString("utf8", second + 1) };
}

export function verifyPlain(identities: Identities, username: string, password: string, now = Date.now()): AuthResult {
  const at = username.lastIndexOf("@");
  if (at <= 0) return { ok: false, reason: "malformed", detail: `SASL PLAIN username "${username}" is not {device}[/modules/{module}]@sas.{hub}` };
  const who = username.slice(0, at);
  const realm = username.slice(at + 1).toLowerCase();
  if (realm.startsWith("sas.root.")) return identities.verifyService(password, "ServiceConnect", now);
  if (!realm.startsWith("sas.")) return { ok: false, reason: "malformed", detail: `SASL PLAIN username "${username}" must end in @sas.{hub}` };
  const m = /^([^/]+)(?:\/modules\/([^/]+))?$/.exec(who);
  if (!m) return { ok: false, reason: "malformed", detail: `SASL PLAIN username "${username}" names no device` };
  const id = m[2] !== undefined ? `${m[1]}/${m[2]}` : m[1]!;
  return identities.verifySas(id, password, now);
}
