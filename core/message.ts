/**
 * The message every head produces and every endpoint consumes. Heads translate their wire form (MQTT
 * property bag, AMQP properties) into this shape and back; nothing past the heads knows a protocol.
 */

/** IoT Hub's system properties, by their long names (the MQTT bag's `$.mid` is `messageId`, …). */
export interface SystemProperties {
  messageId?: string;
  correlationId?: string;
  userId?: string;
  to?: string;
  /** ISO-8601 expiry the device asked for (`$.exp`); Strata's own deadline is `Message.deadline`. */
  expiryTimeUtc?: string;
  contentType?: string;
  contentEncoding?: string;
  /** Module output name (`$.on`). */
  outputName?: string;
  /** Module input name on delivery. */
  inputName?: string;
  messageSchema?: string;
  creationTimeUtc?: string;
  interfaceId?: string;
  component?: string;
  /** Set on delivery: the device/module that sent it (`$.cdid` / `$.cmid`). */
  connectionDeviceId?: string;
  connectionModuleId?: string;
  ack?: string;
  [key: string]: string | undefined;
}

/** What a head hands to `Hub.ingest`: the device's message before Strata stamps it. */
export interface InboundMessage {
  body: Buffer;
  properties: Record<string, string>;
  systemProperties: SystemProperties;
}

/** A message once Strata has taken it: stamped with an id, an origin and an absolute deadline. */
export interface Message extends InboundMessage {
  /** Strata id `{originGateway}:{seq}` — unique in the hierarchy, the dedup key at every hop. */
  id: string;
  /** The gateway where the message entered the hierarchy. */
  origin: string;
  /** The identity that sent it: `deviceId` or `deviceId/moduleId`. */
  source: string;
  /** Milliseconds since the epoch when the origin accepted it. */
  enqueuedTime: number;
  /** Milliseconds since the epoch after which it is dropped and counted; set once, at the origin. */
  deadline: number;
  /** Route priority 0 (highest) to 9. */
  priority: number;
}

/** `deviceId` or `deviceId/moduleId`. */
export type IdentityId = string;

export function identityId(deviceId: string, moduleId?: string): IdentityId {
  return moduleId ? `${deviceId}/${moduleId}` : deviceId;
}

export function splitIdentityId(id: IdentityId): { deviceId: string; moduleId?: string } {
  const slash = id.indexOf("/");
  return slash < 0 ? { deviceId: id } : { deviceId: id.slice(0, slash), moduleId: id.slice(slash + 1) };
}
