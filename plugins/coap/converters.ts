// CoAP converters: a request payload (JSON or SenML JSON) becomes telemetry. Pure functions; the samples are
// checked by the translation conformance kit. The device id comes from the URI path (`/telemetry/{id}`),
// which the transport passes as the hint's deviceId.
import type { Converter, Telemetry, ToDevice } from "../../core/index.js";

/** One CoAP request as the converters see it. */
export interface CoapInput {
  payload: Buffer;
  /** The Content-Format option as node-coap names it (`application/json`), or undefined when absent. */
  contentFormat: string | undefined;
  /** URI query options `?k=v&…`: they become the message's application properties. */
  query: Readonly<Record<string, string>>;
}

/**
 * What a device receives: as an observe notification on `/commands/{id}`, or in the response to its next
 * POST or GET `/commands/{id}`. A method waits for `POST /commands/{id}/{rid}` with `{"status":…,"payload":…}`.
 */
export type CoapCommand =
  | { rid: number; method: string; payload: unknown }
  | { desired: Record<string, unknown> }
  | { c2d: string; properties: Record<string, string> };

/** A method command before the transport numbers it (the converter stays pure: `rid` is the transport's). */
export type CoapCommandDraft = { method: string; payload: unknown } | Exclude<CoapCommand, { rid: number }>;

export const JSON_FORMAT = "application/json";
export const SENML_FORMAT = "application/senml+json";

const toDevice: ToDevice<CoapCommandDraft> = {
  methods: { "*": (payload, meta) => [{ method: meta.key ?? "", payload }] },
  desired: { "*": (value, meta) => [{ desired: { [meta.key ?? ""]: value } }] },
  c2d: (m) => [{ c2d: m.body.toString("utf8"), properties: { ...m.properties } }],
};

function properties(input: CoapInput): Pick<Telemetry, "properties"> {
  return Object.keys(input.query).length > 0 ? { properties: { ...input.query } } : {};
}

function parseJson(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString("utf8")) as unknown;
  } catch (err) {
    throw new Error(`payload is not JSON: ${(err as Error).message}`);
  }
}

/** `POST /telemetry/t1` with `{"temperature":21.5}` (Content-Format 50 or none) → that object as telemetry. */
export const coapJsonConverter: Converter<CoapInput, CoapCommandDraft> = {
  model: "coap-json",
  description: "a JSON object per request (Content-Format application/json or none); the device id is the URI path's last segment",
  recognize: (input, hint) => (input.contentFormat === undefined || input.contentFormat === JSON_FORMAT ? hint.deviceId : undefined),
  fromDevice(input) {
    const o = parseJson(input.payload);
    if (!o || typeof o !== "object" || Array.isArray(o)) throw new Error("payload must be a JSON object");
    if (Object.keys(o).length === 0) throw new Error("payload has no telemetry fields");
    return [{ body: o, ...properties(input) }];
  },
  toDevice,
  samples: {
    fromDevice: [
      {
        raw: { payload: Buffer.from('{"temperature":21.5}'), contentFormat: JSON_FORMAT, query: { kind: "climate" } },
        hint: { deviceId: "t1" }, deviceId: "t1",
        telemetry: [{ body: { temperature: 21.5 }, properties: { kind: "climate" } }],
      },
      { raw: { payload: Buffer.from('{"on":true}'), contentFormat: undefined, query: {} }, hint: { deviceId: "t2" }, deviceId: "t2", telemetry: [{ body: { on: true } }] },
    ],
    malformed: [
      { raw: { payload: Buffer.from("{broken"), contentFormat: JSON_FORMAT, query: {} }, hint: { deviceId: "t1" } },
      { raw: { payload: Buffer.from("[1,2]"), contentFormat: undefined, query: {} }, hint: { deviceId: "t1" } },
      { raw: { payload: Buffer.from("{}"), contentFormat: undefined, query: {} }, hint: { deviceId: "t1" } },
    ],
    methods: [{ name: "reboot", payload: { delay: 1 }, commands: [{ method: "reboot", payload: { delay: 1 } }] }],
    desired: [{ key: "interval", value: 5, commands: [{ desired: { interval: 5 } }] }],
    c2d: [{ message: { body: Buffer.from("hello"), properties: { a: "b" } }, commands: [{ c2d: "hello", properties: { a: "b" } }] }],
  },
};

interface SenmlRecord {
  bn?: unknown; n?: unknown; v?: unknown; vs?: unknown; vb?: unknown;
}

/**
 * SenML JSON (RFC 8428, Content-Format 110), CoAP's native sensor format: `[{"bn":"env/","n":"temp","v":21.5},
 * {"n":"hum","v":40}]` → `{"env/temp":21.5,"env/hum":40}`. The base name carries over to later records; times
 * and units are not kept (the message's enqueue time stands for the reading).
 */
export const coapSenmlConverter: Converter<CoapInput, CoapCommandDraft> = {
  model: "coap-senml",
  description: "SenML JSON records (Content-Format application/senml+json); name → value",
  recognize: (input, hint) => (input.contentFormat === SENML_FORMAT ? hint.deviceId : undefined),
  fromDevice(input) {
    const records = parseJson(input.payload);
    if (!Array.isArray(records) || records.length === 0) throw new Error("SenML payload must be a non-empty JSON array of records");
    const body: Record<string, number | string | boolean> = {};
    let baseName = "";
    records.forEach((r: SenmlRecord, i) => {
      if (!r || typeof r !== "object") throw new Error(`SenML record ${i} is not an object`);
      if (r.bn !== undefined) {
        if (typeof r.bn !== "string") throw new Error(`SenML record ${i}: bn must be a string`);
        baseName = r.bn;
      }
      const name = baseName + (typeof r.n === "string" ? r.n : "");
      if (name === "") throw new Error(`SenML record ${i} has no name (n or bn)`);
      const value = typeof r.v === "number" ? r.v : typeof r.vs === "string" ? r.vs : typeof r.vb === "boolean" ? r.vb : undefined;
      if (value === undefined) throw new Error(`SenML record ${i} (${name}) has no v, vs or vb value`);
      body[name] = value;
    });
    return [{ body, ...properties(input) }];
  },
  toDevice,
  samples: {
    fromDevice: [{
      raw: { payload: Buffer.from('[{"bn":"env/","n":"temp","u":"Cel","v":21.5},{"n":"door","vb":false},{"n":"fw","vs":"1.2"}]'), contentFormat: SENML_FORMAT, query: {} },
      hint: { deviceId: "s1" }, deviceId: "s1",
      telemetry: [{ body: { "env/temp": 21.5, "env/door": false, "env/fw": "1.2" } }],
    }],
    malformed: [
      { raw: { payload: Buffer.from('{"n":"temp","v":1}'), contentFormat: SENML_FORMAT, query: {} }, hint: { deviceId: "s1" } },
      { raw: { payload: Buffer.from('[{"n":"temp"}]'), contentFormat: SENML_FORMAT, query: {} }, hint: { deviceId: "s1" } },
    ],
    methods: [{ name: "identify", payload: null, commands: [{ method: "identify", payload: null }] }],
  },
};

export const coapConverters: readonly Converter<CoapInput, CoapCommandDraft>[] = [coapJsonConverter, coapSenmlConverter];

/** Content formats some converter takes (anything else is answered 4.15 Unsupported Content-Format). */
export function supportedFormat(contentFormat: string | undefined): boolean {
  return contentFormat === undefined || contentFormat === JSON_FORMAT || contentFormat === SENML_FORMAT;
}
