// Pure pieces of translation: telemetry ⇄ hub messages, converter checks. No I/O, so converters and their
// samples are testable without sockets.
import { isDeepStrictEqual } from "node:util";
import { StrataError } from "../errors.js";
import type { InboundMessage } from "../message.js";
import type { CloudMessage, ConvertMeta, Converter, SourceHint, Telemetry, TranslationMode } from "./types.js";

/** The application property that names the source device in protocol mode. */
export const DEVICE_ID_PROPERTY = "deviceId";

/** A converter's telemetry as the hub's inbound message. Protocol mode tags it with `deviceId`. */
export function telemetryToInbound(t: Telemetry, deviceId: string, mode: TranslationMode): InboundMessage {
  let body: Buffer;
  let contentType = t.contentType;
  let contentEncoding = t.contentEncoding;
  if (Buffer.isBuffer(t.body)) {
    body = t.body;
  } else if (typeof t.body === "string") {
    body = Buffer.from(t.body, "utf8");
    contentType ??= "text/plain";
    contentEncoding ??= "utf-8";
  } else {
    body = Buffer.from(JSON.stringify(t.body ?? null), "utf8");
    contentType ??= "application/json";
    contentEncoding ??= "utf-8";
  }
  const properties: Record<string, string> = { ...(t.properties ?? {}) };
  if (mode === "protocol") properties[DEVICE_ID_PROPERTY] = deviceId;
  return {
    body,
    properties,
    systemProperties: {
      ...(contentType !== undefined ? { contentType } : {}),
      ...(contentEncoding !== undefined ? { contentEncoding } : {}),
      ...(t.messageId !== undefined ? { messageId: t.messageId } : {}),
      ...(t.correlationId !== undefined ? { correlationId: t.correlationId } : {}),
    },
  };
}

/** The body a message carries, decoded the way `telemetryToInbound` encoded it (JSON, text or bytes). */
export function decodeBody(m: Pick<InboundMessage, "body" | "systemProperties">): unknown {
  const ct = m.systemProperties.contentType ?? "";
  if (ct.startsWith("application/json")) return JSON.parse(m.body.toString("utf8"));
  if (ct.startsWith("text/")) return m.body.toString("utf8");
  return m.body;
}

/** Load-time check of a converter's shape (zigbee2mqtt checks definitions when it loads them). */
export function validateConverter(c: Converter<unknown, unknown>, plugin: string): void {
  const problems: string[] = [];
  if (typeof c?.model !== "string" || c.model.trim() === "") problems.push("model must be a non-empty string");
  if (typeof c?.recognize !== "function") problems.push("recognize(raw, hint) must be a function");
  if (typeof c?.fromDevice !== "function") problems.push("fromDevice(raw, meta) must be a function");
  if (!c?.samples || !Array.isArray(c.samples.fromDevice) || c.samples.fromDevice.length === 0) {
    problems.push("samples.fromDevice must declare at least one example (the conformance kit round-trips it)");
  }
  for (const [kind, table] of Object.entries({ methods: c?.toDevice?.methods, desired: c?.toDevice?.desired })) {
    for (const [name, fn] of Object.entries(table ?? {})) {
      if (typeof fn !== "function") problems.push(`toDevice.${kind}.${name} must be a function`);
    }
  }
  if (problems.length > 0) {
    throw new StrataError("STRATA_TRANSLATION_CONVERTER", `plugin ${plugin}: converter ${String(c?.model)}: ${problems.join("; ")}`);
  }
}

/** Recognises raw input against converters in order: the first that names a device takes it. */
export function recognize<Raw, Cmd>(converters: readonly Converter<Raw, Cmd>[], raw: Raw, hint: SourceHint): { converter: Converter<Raw, Cmd>; deviceId: string } | undefined {
  for (const converter of converters) {
    let deviceId: string | undefined;
    try {
      deviceId = converter.recognize(raw, hint);
    } catch {
      // A recognise that throws does not take the input; the next converter may.
      continue;
    }
    if (typeof deviceId === "string" && deviceId !== "") return { converter, deviceId };
  }
  return undefined;
}

/** Device ids IoT Hub accepts: up to 128 of `[A-Za-z0-9-.%_*?!(),:=@$']`. */
export function isValidDeviceId(id: string): boolean {
  return /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/.test(id);
}

/**
 * Every problem with a converter's declared samples (empty: all round-trip): recognition, telemetry,
 * the hub message it becomes and back, refusal of malformed samples, and each command sample.
 */
export function checkConverterSamples<Raw, Cmd>(c: Converter<Raw, Cmd>): string[] {
  const problems: string[] = [];
  const meta = (deviceId: string, options: Record<string, unknown> = {}): ConvertMeta => ({ deviceId, model: c.model, options });
  c.samples.fromDevice.forEach((s, i) => {
    const where = `${c.model} samples.fromDevice[${i}]`;
    let id: string | undefined;
    try {
      id = c.recognize(s.raw, s.hint ?? {});
    } catch (err) {
      problems.push(`${where}: recognize threw ${(err as Error).message}`);
      return;
    }
    if (id !== s.deviceId) problems.push(`${where}: recognized as ${JSON.stringify(id)}, declared ${JSON.stringify(s.deviceId)}`);
    let out: readonly Telemetry[];
    try {
      out = c.fromDevice(s.raw, meta(s.deviceId));
    } catch (err) {
      problems.push(`${where}: fromDevice threw ${(err as Error).message}`);
      return;
    }
    if (!isDeepStrictEqual(normalise(out), normalise(s.telemetry))) {
      problems.push(`${where}: fromDevice gave ${JSON.stringify(out)}, declared ${JSON.stringify(s.telemetry)}`);
    }
    for (const mode of ["protocol", "identity"] as const) {
      out.forEach((t, j) => {
        const inbound = telemetryToInbound(t, s.deviceId, mode);
        // Bytes stay bytes whatever their content type; text and JSON decode back to what the converter made.
        const back = Buffer.isBuffer(t.body) ? inbound.body : decodeBody(inbound);
        const expected = Buffer.isBuffer(t.body) || typeof t.body === "string" ? t.body : JSON.parse(JSON.stringify(t.body ?? null));
        if (!isDeepStrictEqual(back, expected)) problems.push(`${where}: message ${j} does not decode back to its body in ${mode} mode`);
        if (mode === "protocol" && inbound.properties[DEVICE_ID_PROPERTY] !== s.deviceId) problems.push(`${where}: message ${j} lacks the deviceId property in protocol mode`);
      });
    }
  });
  (c.samples.malformed ?? []).forEach((s, i) => {
    const where = `${c.model} samples.malformed[${i}]`;
    let id: string | undefined;
    try {
      id = c.recognize(s.raw, s.hint ?? {});
    } catch {
      return;
    }
    if (id === undefined) return;
    try {
      c.fromDevice(s.raw, meta(id));
      problems.push(`${where}: was accepted; fromDevice must throw for it`);
    } catch {
      // refused, as declared
    }
  });
  (c.samples.methods ?? []).forEach((s, i) => {
    const fn = c.toDevice?.methods?.[s.name] ?? c.toDevice?.methods?.["*"];
    if (!fn) return problems.push(`${c.model} samples.methods[${i}]: no toDevice.methods.${s.name}`);
    compareCommands(problems, `${c.model} samples.methods[${i}]`, () => fn(s.payload, { ...meta("sample", s.options), key: s.name }), s.commands);
  });
  (c.samples.desired ?? []).forEach((s, i) => {
    const fn = c.toDevice?.desired?.[s.key] ?? c.toDevice?.desired?.["*"];
    if (!fn) return problems.push(`${c.model} samples.desired[${i}]: no toDevice.desired.${s.key}`);
    compareCommands(problems, `${c.model} samples.desired[${i}]`, () => fn(s.value, { ...meta("sample", s.options), key: s.key }), s.commands);
  });
  (c.samples.c2d ?? []).forEach((s, i) => {
    const fn = c.toDevice?.c2d;
    if (!fn) return problems.push(`${c.model} samples.c2d[${i}]: no toDevice.c2d`);
    compareCommands(problems, `${c.model} samples.c2d[${i}]`, () => fn(s.message as CloudMessage, meta("sample")), s.commands);
  });
  return problems;
}

function compareCommands(problems: string[], where: string, run: () => readonly unknown[], expected: readonly unknown[]): void {
  try {
    const got = run();
    if (!isDeepStrictEqual(normalise(got), normalise(expected))) problems.push(`${where}: gave ${JSON.stringify(got)}, declared ${JSON.stringify(expected)}`);
  } catch (err) {
    problems.push(`${where}: threw ${(err as Error).message}`);
  }
}

/** Plain data for comparison: drops undefined fields, keeps Buffers. */
function normalise(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v;
  if (Array.isArray(v)) return v.map(normalise);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = normalise(x);
    return out;
  }
  return v;
}
