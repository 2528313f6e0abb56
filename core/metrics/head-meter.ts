import type { Attachment, DeviceLink, Hub, MethodRequest } from "../hub/types.js";
import type { AuthResult, Identities } from "../identity/types.js";
import type { InboundMessage } from "../message.js";
import type { HeadMetrics, Metrics } from "./types.js";

const METERED_TARGET = Symbol("strata.meteredTarget");

/** The service a metered stand-in wraps (itself when it is not one): keys that must not see the wrapper. */
export function unmetered<T extends object>(service: T): T {
  return ((service as Record<symbol, unknown>)[METERED_TARGET] as T | undefined) ?? service;
}

/** What a protocol head is given, metered: pass these to the head instead of the plain services. */
export interface MeteredServices {
  hub: Hub;
  identities: Identities;
}

/**
 * Per-head counters without touching the head's code: the head gets a Hub and Identities that count what
 * passes through them (messages in on ingest/forward once durable, messages out on the links it attaches,
 * refused credentials). Connections are read from the hub at scrape time (core-metrics.ts). Without a
 * Metrics registry (a plugin's own tests) the services are returned as they are.
 */
export function meterHead(metrics: Metrics | undefined, head: string, services: MeteredServices): MeteredServices {
  if (!metrics) return services;
  const m = metrics.heads();
  const inMsgs = m.messagesIn.labels(head);
  const inBytes = m.bytesIn.labels(head);
  const count = (body: Buffer) => { inMsgs.inc(); inBytes.inc(body.length); };
  const hub = delegate(services.hub, {
    ingest: (target) => async (principal: Parameters<Hub["ingest"]>[0], message: InboundMessage) => {
      const result = await target.ingest(principal, message);
      count(message.body);
      return result;
    },
    forward: (target) => async (principal: Parameters<Hub["forward"]>[0], message: Parameters<Hub["forward"]>[1]) => {
      const result = await target.forward(principal, message);
      count(message.body);
      return result;
    },
    forwardGroups: (target) => async (groups: Parameters<Hub["forwardGroups"]>[0]) => {
      const results = await target.forwardGroups(groups);
      let n = 0;
      let bytes = 0;
      for (const [, messages] of groups) for (const message of messages) { n++; bytes += message.body.length; }
      inMsgs.inc(n);
      inBytes.inc(bytes);
      return results;
    },
    attach: (target) => (link: DeviceLink): Attachment => target.attach(meterLink(link, m, head)),
  });
  const checked = (result: AuthResult): AuthResult => {
    if (!result.ok) m.authFailures.inc({ head, reason: result.reason });
    return result;
  };
  // Every Identities call that authenticates a client; a refusal counts as an auth failure of the head.
  const identities = delegate(services.identities, {
    verifySas: (t) => (...a) => checked(t.verifySas(...a)),
    verifyCertificate: (t) => (...a) => checked(t.verifyCertificate(...a)),
    verifyOnBehalfOf: (t) => (...a) => checked(t.verifyOnBehalfOf(...a)),
    verifyService: (t) => (...a) => checked(t.verifyService(...a)),
  });
  return { hub, identities };
}

/** The link as the hub sees it: every delivery to the device counted once it succeeded. */
function meterLink(link: DeviceLink, m: HeadMetrics, head: string): DeviceLink {
  const out = m.messagesOut.labels(head);
  const bytes = m.bytesOut.labels(head);
  const sent = (n: number) => { out.inc(); bytes.inc(n); };
  return delegate(link, {
    deliverC2D: (target) => async (message: Parameters<DeviceLink["deliverC2D"]>[0]) => {
      const outcome = await target.deliverC2D(message);
      sent(message.body.length);
      return outcome;
    },
    deliverInput: (target) => async (input: string, message: Parameters<DeviceLink["deliverInput"]>[1]) => {
      await target.deliverInput(input, message);
      sent(message.body.length);
    },
    desiredPatch: (target) => (patch: Parameters<DeviceLink["desiredPatch"]>[0]) => {
      target.desiredPatch(patch);
      sent(Buffer.byteLength(JSON.stringify(patch)));
    },
    invokeMethod: (target) => async (request: MethodRequest, signal: AbortSignal) => {
      const result = await target.invokeMethod(request, signal);
      sent(Buffer.byteLength(JSON.stringify(request.payload ?? null)));
      return result;
    },
  });
}

type Overrides<T> = { [K in keyof T]?: (target: T) => T[K] };

/**
 * A stand-in for `target`: the overridden members, everything else read from the target itself (methods
 * bound to it, so its own `this` and private state are untouched).
 */
function delegate<T extends object>(target: T, overrides: Overrides<T>): T {
  const made = new Map<PropertyKey, unknown>([[METERED_TARGET, target]]);
  for (const [key, make] of Object.entries(overrides) as [keyof T, (t: T) => unknown][]) made.set(key, make(target));
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(t, key) {
      if (made.has(key)) return made.get(key);
      const value = Reflect.get(t, key, t) as unknown;
      if (typeof value !== "function") return value;
      let fn = bound.get(key);
      if (!fn) bound.set(key, (fn = (value as (...a: unknown[]) => unknown).bind(t)));
      return fn;
    },
    set(t, key, value) {
      return Reflect.set(t, key, value, t);
    },
  });
}
