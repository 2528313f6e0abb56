/**
 * The MQTT CONNECT as IoT Hub reads it: client id `deviceId` or `deviceId/moduleId`, username
 * `{hub}/{clientId}/?api-version=…[&auth-chain=…]` (reference/iot-hub-wire.md). Pure, so testable alone.
 */

/** IoT Hub's device id alphabet (1–128 characters). */
const DEVICE_ID = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/;
/** Module ids also allow `+ # ;` and start `$` for system modules (`$edgeHub`). */
const MODULE_ID = /^[A-Za-z0-9\-:.+%_#*?!(),=@;$']{1,128}$/;

export interface ClientIdentity {
  id: string;
  deviceId: string;
  moduleId?: string;
}

export interface ConnectInfo extends ClientIdentity {
  /** The host named in the username (the IoT Hub name with the Node SDK, not the gateway's). */
  host: string;
  apiVersion: string;
  /** `auth-chain`, target first, acting gateway last; absent for a direct connection. */
  authChain?: string[];
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

export function parseClientId(clientId: string | undefined | null): Parsed<ClientIdentity> {
  if (!clientId) return { ok: false, reason: "empty client id; use deviceId or deviceId/moduleId" };
  const parts = clientId.split("/");
  if (parts.length > 2) return { ok: false, reason: `client id "${clientId}" has more than one "/"; use deviceId or deviceId/moduleId` };
  const [deviceId, moduleId] = parts as [string, string | undefined];
  if (!DEVICE_ID.test(deviceId)) return { ok: false, reason: `device id "${deviceId}" is not 1-128 characters of IoT Hub's device id alphabet` };
  if (moduleId !== undefined && !MODULE_ID.test(moduleId)) {
    return { ok: false, reason: `module id "${moduleId}" is not 1-128 characters of IoT Hub's module id alphabet` };
  }
  return { ok: true, value: moduleId === undefined ? { id: deviceId, deviceId } : { id: clientId, deviceId, moduleId } };
}

/** Checks the username against the (already parsed) client id and reads its query. */
export function parseUsername(username: string | undefined | null, client: ClientIdentity): Parsed<ConnectInfo> {
  if (!username) return { ok: false, reason: "no username; send {hub}/{clientId}/?api-version=…" };
  const q = username.indexOf("?");
  let path = q < 0 ? username : username.slice(0, q);
  const query = q < 0 ? "" : username.slice(q + 1);
  if (path.endsWith("/")) path = path.slice(0, -1);
  const slash = path.indexOf("/");
  const host = slash < 0 ? "" : path.slice(0, slash);
  const named = slash < 0 ? "" : path.slice(slash + 1);
  if (!host || named !== client.id) {
    return { ok: false, reason: `username "${username}" does not have the form {hub}/${client.id}/?api-version=…` };
  }
  const params = new Map<string, string>();
  for (const pair of query.split("&")) {
    if (!pair) continue;
    const eq = pair.indexOf("=");
    const key = eq < 0 ? pair : pair.slice(0, eq);
    let value = eq < 0 ? "" : pair.slice(eq + 1);
    try {
      value = decodeURIComponent(value);
    } catch {
      return { ok: false, reason: `username parameter "${key}" has a malformed %-escape` };
    }
    params.set(key, value);
  }
  const apiVersion = params.get("api-version");
  if (!apiVersion) return { ok: false, reason: "username has no api-version; append ?api-version=2021-04-12" };
  const chainText = params.get("auth-chain");
  let authChain: string[] | undefined;
  if (chainText !== undefined) {
    authChain = chainText.split(";");
    if (authChain.some((id) => id === "") || authChain[0] !== client.id) {
      return { ok: false, reason: `auth-chain "${chainText}" must list ids separated by ";" starting with the client id ${client.id}` };
    }
  }
  return { ok: true, value: { ...client, host, apiVersion, ...(authChain ? { authChain } : {}) } };
}
