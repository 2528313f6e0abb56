import { identityFromSasToken, parseSasToken, type AuthResult, type Identities } from "../../core/index.js";
import { bodyBytes, echoId, type AmqpMessageIn, type AmqpMessageOut } from "./convert.js";

/**
 * Claims-based security on `$cbs` (spikes.md §3): a `put-token` request names a resource (`name`, the URL-encoded
 * `sr`) and carries a SAS token as its body; the reply on the `$cbs` sender echoes the request's message id as
 * correlation id with `status-code` / `status-description`.
 */
export interface PutTokenRequest {
  token: string;
  /** The audience as sent (`name`), usually the URL-encoded `sr`. */
  name: string;
  type: string;
  /** What the reply must echo. */
  messageId: unknown;
}

export type PutTokenParse = { ok: true; request: PutTokenRequest } | { ok: false; status: number; description: string; messageId: unknown };

export const SAS_TOKEN_TYPE = "servicebus.windows.net:sastoken";

export function parsePutToken(msg: AmqpMessageIn & { message_id?: unknown }): PutTokenParse {
  const props = msg.application_properties ?? {};
  const messageId = msg.message_id;
  const operation = props["operation"];
  if (operation !== "put-token") {
    return { ok: false, status: 400, description: `unsupported $cbs operation ${JSON.stringify(operation)}; only put-token is served`, messageId };
  }
  const type = typeof props["type"] === "string" ? props["type"] : "";
  if (type !== SAS_TOKEN_TYPE && type !== "azure-devices.net:sastoken") {
    return { ok: false, status: 400, description: `unsupported token type ${JSON.stringify(type)}; send a SAS token (type ${SAS_TOKEN_TYPE})`, messageId };
  }
  const name = typeof props["name"] === "string" ? props["name"] : "";
  const body = msg.body;
  const token = typeof body === "string" ? body : bodyBytes(body).toString("utf8");
  if (!token.startsWith("SharedAccessSignature ")) {
    return { ok: false, status: 400, description: "the put-token body must be a SharedAccessSignature string", messageId };
  }
  return { ok: true, request: { token, name, type, messageId } };
}

/** The reply to a put-token: correlation id = request message id, status code and description. */
export function putTokenReply(messageId: unknown, status: number, description: string): AmqpMessageOut {
  const reply: AmqpMessageOut = {
    application_properties: { "status-code": status, "status-description": description },
    body: undefined,
  };
  const cid = echoId(messageId);
  if (cid !== undefined) reply.correlation_id = cid;
  return reply;
}

/**
 * Verifies a put-token: a device/module token (sr `{hub}/devices/{d}[/modules/{m}]`) with verifySas for the
 * identity it names, or a service token (`skn=` a policy) with verifyService for ServiceConnect.
 */
export function verifyPutToken(identities: Identities, request: PutTokenRequest, now = Date.now()): AuthResult {
  let skn: string | undefined;
  try {
    skn = parseSasToken(request.token).skn;
  } catch (err) {
    return { ok: false, reason: "malformed", detail: (err as Error).message };
  }
  const named = identityFromSasToken(request.token);
  if (skn !== undefined && named === undefined) return identities.verifyService(request.token, "ServiceConnect", now);
  if (!named) return { ok: false, reason: "malformed", detail: "the token's sr names no device (/devices/{id}) and no policy (skn=)" };
  return identities.verifySas(named.id, request.token, now);
}

/** CBS status for a failed verification: 401 as IoT Hub answers; the SDK maps it to UnauthorizedError. */
export function statusForFailure(result: Extract<AuthResult, { ok: false }>): { status: number; description: string } {
  return { status: 401, description: `${result.reason}: ${result.detail}` };
}
