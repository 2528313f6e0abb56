/**
 * IoT Hub's MQTT topic names (reference/iot-hub-wire.md): pure parsing and building, no I/O, so every rule
 * of who may publish or subscribe where is testable on its own.
 */

/** What a connection acts as, reduced to what topics need. */
export interface TopicOwner {
  deviceId: string;
  moduleId?: string;
}

/** A PUBLISH from a device, classified. */
export type InboundTopic =
  | { kind: "telemetry"; deviceId: string; moduleId?: string; bag: string }
  | { kind: "twin-get"; rid: string }
  | { kind: "twin-reported"; rid: string }
  | { kind: "method-response"; status: number; rid: string }
  | { kind: "unknown" };

/** What a device can subscribe to; each is one thing the hub checks with `DeviceLink.accepts`. */
export type SubscriptionKind = "c2d" | "inputs" | "twin-responses" | "desired" | "methods";

export type SubscriptionCheck = { ok: true; kind: SubscriptionKind } | { ok: false; reason: string };
export type PublishCheck = { ok: true; topic: InboundTopic } | { ok: false; reason: string };

const TWIN_GET = "$iothub/twin/GET/";
const TWIN_REPORTED = "$iothub/twin/PATCH/properties/reported/";
const METHOD_RES = "$iothub/methods/res/";

/** Classifies a publish topic without checking whose it is (see checkPublish). */
export function parseInboundTopic(topic: string): InboundTopic {
  if (topic.startsWith("$iothub/")) return parseIotHubTopic(topic);
  const parts = topic.split("/");
  if (parts[0] !== "devices" || !parts[1]) return { kind: "unknown" };
  // devices/{d}/messages/events[/{bag}] — the trailing slash is optional; the bag is the rest of the topic.
  if (parts[2] === "messages" && parts[3] === "events") {
    return { kind: "telemetry", deviceId: parts[1], bag: bagOf(parts.slice(4)) };
  }
  // devices/{d}/modules/{m}/messages/events[/{bag}]
  if (parts[2] === "modules" && parts[3] && parts[4] === "messages" && parts[5] === "events") {
    return { kind: "telemetry", deviceId: parts[1], moduleId: parts[3], bag: bagOf(parts.slice(6)) };
  }
  return { kind: "unknown" };
}

/** The bag after `…/events/`. The Node SDK ends an output event's topic with "/" after the bag: not part of it. */
function bagOf(rest: string[]): string {
  const bag = rest.join("/");
  return bag.endsWith("/") ? bag.slice(0, -1) : bag;
}

function parseIotHubTopic(topic: string): InboundTopic {
  const rid = (rest: string): string | undefined => {
    // Both `…/GET/?$rid=1` (the SDKs) and `…/GET?$rid=1` are seen in the wild.
    const query = rest.startsWith("?") ? rest.slice(1) : rest.startsWith("/?") ? rest.slice(2) : undefined;
    if (query === undefined) return undefined;
    return queryValue(query, "$rid");
  };
  if (topic.startsWith(TWIN_GET.slice(0, -1))) {
    const r = rid(topic.slice(TWIN_GET.length - 1));
    return r ? { kind: "twin-get", rid: r } : { kind: "unknown" };
  }
  if (topic.startsWith(TWIN_REPORTED.slice(0, -1))) {
    const r = rid(topic.slice(TWIN_REPORTED.length - 1));
    return r ? { kind: "twin-reported", rid: r } : { kind: "unknown" };
  }
  if (topic.startsWith(METHOD_RES)) {
    const rest = topic.slice(METHOD_RES.length);
    const slash = rest.search(/[/?]/);
    const statusText = slash < 0 ? rest : rest.slice(0, slash);
    const r = slash < 0 ? undefined : rid(rest.slice(slash));
    if (!/^\d{1,3}$/.test(statusText) || !r) return { kind: "unknown" };
    return { kind: "method-response", status: Number(statusText), rid: r };
  }
  return { kind: "unknown" };
}

/** The raw (still URL-encoded) value of `key` in `a=1&b=2`, so a reply can echo it byte for byte. */
export function queryValue(query: string, key: string): string | undefined {
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    if (eq > 0 && pair.slice(0, eq) === key) return pair.slice(eq + 1) || undefined;
  }
  return undefined;
}

/** May `owner` publish on `topic`? Only its own telemetry topic and the `$iothub` request topics. */
export function checkPublish(owner: TopicOwner, topic: string): PublishCheck {
  const parsed = parseInboundTopic(topic);
  switch (parsed.kind) {
    case "unknown":
      return { ok: false, reason: "not a topic a device may publish on (telemetry, twin GET/PATCH, method response)" };
    case "telemetry":
      if (parsed.deviceId !== owner.deviceId || parsed.moduleId !== owner.moduleId) {
        const own = owner.moduleId
          ? `devices/${owner.deviceId}/modules/${owner.moduleId}/messages/events/`
          : `devices/${owner.deviceId}/messages/events/`;
        return { ok: false, reason: `telemetry of another identity; this connection may publish on ${own}` };
      }
      return { ok: true, topic: parsed };
    default:
      return { ok: true, topic: parsed };
  }
}

/** May `owner` subscribe to `filter`? Only the filters the SDKs use, each for the owner's own topics. */
export function checkSubscription(owner: TopicOwner, filter: string): SubscriptionCheck {
  switch (filter) {
    case "$iothub/twin/res/#":
      return { ok: true, kind: "twin-responses" };
    case "$iothub/twin/PATCH/properties/desired/#":
      return { ok: true, kind: "desired" };
    case "$iothub/methods/POST/#":
      return { ok: true, kind: "methods" };
  }
  const parts = filter.split("/");
  if (parts[0] === "devices" && parts.length === 5 && parts[2] === "messages" && parts[3] === "devicebound" && parts[4] === "#") {
    if (owner.moduleId) return { ok: false, reason: "modules receive no cloud-to-device messages; subscribe to devices/{d}/modules/{m}/inputs/#" };
    if (parts[1] !== owner.deviceId) return { ok: false, reason: `another device's messages; subscribe to devices/${owner.deviceId}/messages/devicebound/#` };
    return { ok: true, kind: "c2d" };
  }
  if (parts[0] === "devices" && parts.length === 6 && parts[2] === "modules" && parts[4] === "inputs" && parts[5] === "#") {
    if (!owner.moduleId) return { ok: false, reason: "a device has no module inputs; connect as deviceId/moduleId" };
    if (parts[1] !== owner.deviceId || parts[3] !== owner.moduleId) {
      return { ok: false, reason: `another module's inputs; subscribe to devices/${owner.deviceId}/modules/${owner.moduleId}/inputs/#` };
    }
    return { ok: true, kind: "inputs" };
  }
  return { ok: false, reason: "not a topic filter IoT Hub offers (devicebound/#, inputs/#, $iothub/twin/res/#, $iothub/twin/PATCH/properties/desired/#, $iothub/methods/POST/#)" };
}

// ---- topics the gateway publishes to a device ------------------------------------------------------------

export function c2dTopic(deviceId: string, bag: string): string {
  return `devices/${deviceId}/messages/devicebound/${bag}`;
}

/** The Node SDK's regex needs a segment after the input name, so the slash is there even with no bag. */
export function inputTopic(deviceId: string, moduleId: string, input: string, bag: string): string {
  return `devices/${deviceId}/modules/${moduleId}/inputs/${input}/${bag}`;
}

/** `rid` is echoed exactly as the device sent it (still URL-encoded). */
export function twinResponseTopic(status: number, rid: string, version?: number): string {
  return `$iothub/twin/res/${status}/?$rid=${rid}${version === undefined ? "" : `&$version=${version}`}`;
}

export function desiredPatchTopic(version: number): string {
  return `$iothub/twin/PATCH/properties/desired/?$version=${version}`;
}

export function methodRequestTopic(methodName: string, rid: string): string {
  return `$iothub/methods/POST/${methodName}/?$rid=${rid}`;
}
