// JSON datagrams → telemetry: data plus pure functions, no I/O (the conformance kit checks the samples).
import type { Converter } from "strata";

/** What the device receives, one JSON datagram each. A method waits for `{"rid":…,"status":…,"payload":…}`. */
export type UdpCommand =
  | { method: string; payload: unknown }
  | { desired: Record<string, unknown> }
  | { c2d: string; properties: Record<string, string> };

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // not JSON: not this converter's input
  }
}

/** `{"id":"pump-3","rpm":1450}` → telemetry `{"rpm":1450}` from device `pump-3`. */
export const jsonDatagramConverter: Converter<string, UdpCommand> = {
  model: "json-datagram",
  description: "one JSON object per UDP datagram; `id` names the device, the other fields are the telemetry",
  recognize(text) {
    const id = parseObject(text)?.id;
    return typeof id === "string" ? id : undefined;
  },
  fromDevice(text) {
    const o = parseObject(text);
    if (!o) throw new Error("not a JSON object");
    const { id: _id, ...fields } = o;
    if (Object.keys(fields).length === 0) throw new Error("no telemetry fields besides id");
    return [{ body: fields }];
  },
  toDevice: {
    methods: { "*": (payload, meta) => [{ method: meta.key ?? "", payload }] },
    desired: { "*": (value, meta) => [{ desired: { [meta.key ?? ""]: value } }] },
    c2d: (m) => [{ c2d: m.body.toString("utf8"), properties: { ...m.properties } }],
  },
  samples: {
    fromDevice: [{ raw: '{"id":"pump-3","rpm":1450,"ok":true}', deviceId: "pump-3", telemetry: [{ body: { rpm: 1450, ok: true } }] }],
    malformed: [{ raw: '{"id":"pump-3"}' }, { raw: "{nope" }],
    methods: [{ name: "stop", payload: { now: true }, commands: [{ method: "stop", payload: { now: true } }] }],
    desired: [{ key: "rpm", value: 1200, commands: [{ desired: { rpm: 1200 } }] }],
    c2d: [{ message: { body: Buffer.from("hi"), properties: { a: "b" } }, commands: [{ c2d: "hi", properties: { a: "b" } }] }],
  },
};
