import type { IdentityId } from "../message.js";

/**
 * Names of the endpoint queues in the store. One place, so that the hub, the upstream link and the tools
 * that show queue depths agree.
 */
export const UPSTREAM = "$upstream";

/** C2D feedback records (IoT Hub's JSON shape, one per message) for the service side to drain. */
export const FEEDBACK = "$feedback";

/** Cloud-to-device messages waiting for one device. */
export function c2dQueue(id: IdentityId): string {
  return `c2d:${id}`;
}

/** A module input: `BrokeredEndpoint("/modules/{m}/inputs/{input}")` of the module `{device}/{m}`. */
export function inputQueue(moduleIdentity: IdentityId, input: string): string {
  return `input:${moduleIdentity}:${input}`;
}

export function parseInputQueue(queue: string): { target: IdentityId; input: string } | undefined {
  if (!queue.startsWith("input:")) return undefined;
  const rest = queue.slice("input:".length);
  const colon = rest.lastIndexOf(":");
  if (colon <= 0) return undefined;
  return { target: rest.slice(0, colon), input: rest.slice(colon + 1) };
}

/** A northbound sink at the root (the telemetry log, an MQTT broker): `sink:{name}`. */
export function sinkQueue(name: string): string {
  return `sink:${name}`;
}
