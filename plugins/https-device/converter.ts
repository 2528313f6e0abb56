// IoT Hub's HTTPS device API as a converter: a POSTed body (single or batch) → telemetry; a C2D message →
// an outbox entry the device fetches with GET. Pure.
import type { CloudMessage, Converter, Telemetry } from "../../core/index.js";

export interface HttpInput {
  body: Buffer;
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

export const BATCH_CONTENT_TYPE = "application/vnd.microsoft.iothub.json";
const APP_PREFIX = "iothub-app-";

function header(h: HttpInput["headers"], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function appProperties(source: Readonly<Record<string, unknown>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) {
    if (k.toLowerCase().startsWith(APP_PREFIX) && typeof v === "string") out[k.slice(APP_PREFIX.length)] = v;
  }
  return out;
}

function single(input: HttpInput): Telemetry {
  const h = input.headers;
  const t: Telemetry = { body: input.body, properties: appProperties(h as Record<string, unknown>) };
  const contentType = header(h, "iothub-contenttype");
  const contentEncoding = header(h, "iothub-contentencoding");
  const messageId = header(h, "iothub-messageid");
  const correlationId = header(h, "iothub-correlationid");
  return {
    ...t,
    ...(contentType ? { contentType } : {}),
    ...(contentEncoding ? { contentEncoding } : {}),
    ...(messageId ? { messageId } : {}),
    ...(correlationId ? { correlationId } : {}),
  };
}

function batch(input: HttpInput): Telemetry[] {
  const items = JSON.parse(input.body.toString("utf8")) as unknown;
  if (!Array.isArray(items) || items.length === 0) throw new Error("a batch must be a non-empty JSON array");
  return items.map((item, i) => {
    const o = item as { body?: unknown; properties?: unknown };
    if (typeof o?.body !== "string") throw new Error(`batch item ${i} has no base64 body`);
    const props = o.properties && typeof o.properties === "object" ? (o.properties as Record<string, unknown>) : {};
    return { body: Buffer.from(o.body, "base64"), properties: appProperties(props) };
  });
}

/** What a C2D message becomes: the message itself, for the device's next GET. */
export interface OutboxCommand {
  c2d: CloudMessage;
}

export const httpsDeviceConverter: Converter<HttpInput, OutboxCommand> = {
  model: "iothub-https-device",
  description: "IoT Hub's HTTPS device API: POST …/messages/events (single or batch), C2D by polling",
  recognize: (_input, hint) => hint.deviceId,
  fromDevice(input) {
    const ct = header(input.headers, "content-type") ?? "";
    return ct.startsWith(BATCH_CONTENT_TYPE) ? batch(input) : [single(input)];
  },
  toDevice: { c2d: (message) => [{ c2d: message }] },
  samples: {
    fromDevice: [
      {
        raw: { body: Buffer.from("{\"t\":1}"), headers: { "iothub-app-alert": "yes", "iothub-messageid": "m1", "iothub-contenttype": "application/json" } },
        hint: { deviceId: "d1" },
        deviceId: "d1",
        telemetry: [{ body: Buffer.from("{\"t\":1}"), properties: { alert: "yes" }, messageId: "m1", contentType: "application/json" }],
      },
      {
        raw: { body: Buffer.from(JSON.stringify([{ body: Buffer.from("a").toString("base64"), properties: { "iothub-app-k": "v" } }, { body: Buffer.from("b").toString("base64") }])), headers: { "content-type": BATCH_CONTENT_TYPE } },
        hint: { deviceId: "d1" },
        deviceId: "d1",
        telemetry: [{ body: Buffer.from("a"), properties: { k: "v" } }, { body: Buffer.from("b"), properties: {} }],
      },
    ],
    malformed: [
      { raw: { body: Buffer.from("[{]"), headers: { "content-type": BATCH_CONTENT_TYPE } }, hint: { deviceId: "d1" } },
      { raw: { body: Buffer.from("[]"), headers: { "content-type": BATCH_CONTENT_TYPE } }, hint: { deviceId: "d1" } },
    ],
    c2d: [{ message: { body: Buffer.from("x"), properties: {} }, commands: [{ c2d: { body: Buffer.from("x"), properties: {} } }] }],
  },
};
