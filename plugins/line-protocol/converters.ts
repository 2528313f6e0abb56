// Line protocol converters: one JSON object or one CSV record per line. Pure functions; the samples are
// checked by the translation conformance kit.
import type { Converter, Telemetry } from "../../core/index.js";

/** What the device receives on its TCP connection, one JSON line each. */
export type LineCommand =
  | { method: string; payload: unknown }
  | { desired: Record<string, unknown> }
  | { c2d: string; properties: Record<string, string> };

function parseObject(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const toDevice: Converter<string, LineCommand>["toDevice"] = {
  methods: { "*": (payload, meta) => [{ method: meta.key ?? "", payload }] },
  desired: { "*": (value, meta) => [{ desired: { [meta.key ?? ""]: value } }] },
  c2d: (m) => [{ c2d: m.body.toString("utf8"), properties: { ...m.properties } }],
};

/** `{"deviceId":"t1","temperature":21.5}` → telemetry `{"temperature":21.5}`. */
export function jsonLineConverter(deviceIdField = "deviceId"): Converter<string, LineCommand> {
  return {
    model: "json-line",
    description: "one JSON object per line; the device id in a field, the other fields are the telemetry",
    recognize(line) {
      const id = parseObject(line)?.[deviceIdField];
      return typeof id === "string" ? id : undefined;
    },
    fromDevice(line) {
      const o = parseObject(line);
      if (!o) throw new Error("not a JSON object");
      const { [deviceIdField]: _id, ...fields } = o;
      if (Object.keys(fields).length === 0) throw new Error("no telemetry fields besides the device id");
      return [{ body: fields }];
    },
    toDevice,
    samples: {
      fromDevice: [
        { raw: `{"${deviceIdField}":"t1","temperature":21.5,"ok":true}`, deviceId: "t1", telemetry: [{ body: { temperature: 21.5, ok: true } }] },
      ],
      malformed: [{ raw: `{"${deviceIdField}":"t1"}` }, { raw: "{not json" }],
      methods: [{ name: "reboot", payload: { delay: 1 }, commands: [{ method: "reboot", payload: { delay: 1 } }] }],
      desired: [{ key: "interval", value: 5, commands: [{ desired: { interval: 5 } }] }],
      c2d: [{ message: { body: Buffer.from("hello"), properties: { a: "b" } }, commands: [{ c2d: "hello", properties: { a: "b" } }] }],
    },
  };
}

/** `t1,21.5,40` with columns `["temperature","humidity"]` → `{"temperature":21.5,"humidity":40}`. */
export function csvLineConverter(columns: readonly string[]): Converter<string, LineCommand> {
  const sample = columns.map((_, i) => String(i + 1)).join(",");
  const sampleBody = Object.fromEntries(columns.map((c, i) => [c, i + 1]));
  return {
    model: "csv-line",
    description: `comma-separated: the device id, then ${columns.join(", ")}`,
    recognize(line) {
      if (line.startsWith("{")) return undefined;
      const id = line.split(",", 1)[0]?.trim();
      return id ? id : undefined;
    },
    fromDevice(line) {
      const fields = line.split(",").map((f) => f.trim());
      const values = fields.slice(1);
      if (values.length !== columns.length) throw new Error(`expected ${columns.length} value(s) after the device id (${columns.join(", ")}), got ${values.length}`);
      const body: Record<string, unknown> = {};
      columns.forEach((c, i) => {
        const v = values[i]!;
        const n = Number(v);
        body[c] = v !== "" && Number.isFinite(n) ? n : v;
      });
      const t: Telemetry = { body };
      return [t];
    },
    toDevice,
    samples: {
      fromDevice: [{ raw: `c1,${sample}`, deviceId: "c1", telemetry: [{ body: sampleBody }] }],
      malformed: [{ raw: `c1,${sample},extra` }],
    },
  };
}

/** The converters for a config: JSON first (a line starting with `{`), then CSV. */
export function lineConverters(deviceIdField: string, columns: readonly string[]): Converter<string, LineCommand>[] {
  return [jsonLineConverter(deviceIdField), csvLineConverter(columns)];
}
