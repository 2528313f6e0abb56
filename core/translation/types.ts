import type { Logger } from "../log.js";

/**
 * The typed translation API. A translation plugin brings devices that speak no IoT Hub protocol (PLCs, MCUs,
 * CoAP sensors, plain HTTP) into the hub. Like zigbee2mqtt's converter definitions, a plugin describes each
 * device type as data plus pure functions (`Converter`); core's `Translator` does the rest: identities,
 * back-pressure, durability, twins, methods and C2D.
 */

/**
 * - `protocol`: every message goes in under the gateway's own identity, tagged with a `deviceId` property;
 *   only the gateway has a twin (methods and desired patches address a device inside their payload).
 * - `identity`: each device is its own identity in the gateway's scope, with its own twin, methods and C2D,
 *   indistinguishable upstream from a device connected with its own credentials.
 */
export type TranslationMode = "protocol" | "identity";

/** One telemetry message a converter makes from device input. */
export interface Telemetry {
  /**
   * Buffer: sent as is. string: UTF-8 text (content type text/plain unless given). Anything else: JSON
   * (`application/json`, `utf-8` unless given).
   */
  body: unknown;
  contentType?: string;
  contentEncoding?: string;
  /** Application properties (IoT Hub's message properties; routes can match them). */
  properties?: Readonly<Record<string, string>>;
  messageId?: string;
  correlationId?: string;
}

/** What the transport knows about where an input came from (its peer address, a unit id, a URL path). */
export interface SourceHint {
  /** A device id the transport already knows (an URL path segment, a configured unit). */
  deviceId?: string;
  /** Peer address, e.g. `192.0.2.7:50122`. */
  address?: string;
  [key: string]: unknown;
}

/** Passed to every converter function: which device, and its per-device options from config. */
export interface ConvertMeta {
  readonly deviceId: string;
  readonly model: string;
  readonly options: Readonly<Record<string, unknown>>;
  /** For `toDevice.methods` / `toDevice.desired`: the method name or desired key (useful in a `"*"` entry). */
  readonly key?: string;
}

/** A C2D message as a converter sees it. */
export interface CloudMessage {
  body: Buffer;
  properties: Readonly<Record<string, string>>;
  messageId?: string;
  /** All of IoT Hub's system properties of the message (correlationId, expiryTimeUtc, contentType, …). */
  systemProperties?: Readonly<Record<string, string | undefined>>;
}

/** Cloud → device: how twin desired properties, direct methods and C2D messages become device commands. */
export interface ToDevice<Cmd> {
  /** Per direct method name: the commands it becomes. An unlisted method answers 501; a `"*"` entry takes any name (`meta.key`). */
  readonly methods?: Readonly<Record<string, (payload: unknown, meta: ConvertMeta) => readonly Cmd[]>>;
  /** Per desired property key (zigbee2mqtt's toZigbee `key`): the commands a new value becomes. Unlisted keys are ignored; `"*"` takes any key. */
  readonly desired?: Readonly<Record<string, (value: unknown, meta: ConvertMeta) => readonly Cmd[]>>;
  /** A C2D message: the commands it becomes. Absent: C2D is not offered (messages stay queued). */
  readonly c2d?: (message: CloudMessage, meta: ConvertMeta) => readonly Cmd[];
}

/** Declared examples, checked by the translation conformance kit (and useful as documentation). */
export interface ConverterSamples<Raw, Cmd> {
  /** Raw input, the device it must be recognised as, and the telemetry it must become. */
  readonly fromDevice: readonly { readonly raw: Raw; readonly hint?: SourceHint; readonly deviceId: string; readonly telemetry: readonly Telemetry[] }[];
  /** Inputs that must be refused (recognised or not, `fromDevice` must throw). */
  readonly malformed?: readonly { readonly raw: Raw; readonly hint?: SourceHint }[];
  readonly methods?: readonly { readonly name: string; readonly payload: unknown; readonly commands: readonly Cmd[]; readonly options?: Record<string, unknown> }[];
  readonly desired?: readonly { readonly key: string; readonly value: unknown; readonly commands: readonly Cmd[]; readonly options?: Record<string, unknown> }[];
  readonly c2d?: readonly { readonly message: CloudMessage; readonly commands: readonly Cmd[] }[];
}

/**
 * One device type: data plus pure functions, no I/O. `Raw` is what the transport hands over (a parsed
 * line, a register block, a CoAP payload); `Cmd` is what the transport executes (a register write, a line).
 */
export interface Converter<Raw = unknown, Cmd = unknown> {
  /** A stable name for the device type (`zigbeeModel` in zigbee2mqtt). */
  readonly model: string;
  readonly description: string;
  /** The device id this input came from, or undefined when this converter does not take it. Pure. */
  recognize(raw: Raw, hint: SourceHint): string | undefined;
  /** Input → telemetry. Throw for malformed input: the translator refuses it, counts it and logs it. Pure. */
  fromDevice(raw: Raw, meta: ConvertMeta): readonly Telemetry[];
  readonly toDevice?: ToDevice<Cmd>;
  readonly samples: ConverterSamples<Raw, Cmd>;
}

/**
 * A device's answer with its own status (a method the device refused with 400, say). A transport may resolve
 * `execute` with one; a plain value means status 200. For a C2D message, a status of 400 or more means the
 * device rejected it.
 */
export class DeviceReply {
  constructor(readonly status: number, readonly payload: unknown) {}
}

/** Runs device commands: what the plugin supplies for the cloud → device direction. */
export interface DeviceTransport<Cmd> {
  /**
   * Executes commands on one device, in order. Resolves with the device's answer (a method's response
   * payload), rejects when the device cannot be reached. `signal` aborts on timeout and stop.
   */
  execute(deviceId: string, commands: readonly Cmd[], signal: AbortSignal): Promise<unknown>;
}

export interface TranslatorOptions<Raw, Cmd> {
  /** The plugin's name: the head name on the hub, the `plugin` field of logs and counters. */
  plugin: string;
  mode: TranslationMode;
  /** Identity mode: create an identity the first time an unknown device is seen (root only, see README). */
  autoCreate: boolean;
  converters: readonly Converter<Raw, Cmd>[];
  /** Cloud → device. Without it, devices accept no methods, desired patches or C2D. */
  transport?: DeviceTransport<Cmd>;
  /** Per-device options handed to converters as `meta.options`. */
  deviceOptions?: (deviceId: string) => Readonly<Record<string, unknown>>;
  /** Wait between retries while the store is over quota (default 500 ms). */
  quotaRetryMs?: number;
  /** Whether this gateway is the root (identities are created locally only there). */
  isRoot: boolean;
  logger: Logger;
}

/** Counters of one translator (also reachable through `translationStats(hub)`). */
export interface TranslationStats {
  /** Inputs handed to `receive`. */
  received: number;
  /** Messages durable in the hub. */
  ingested: number;
  /** Inputs refused because no converter took them or the converter threw. */
  malformed: number;
  /** Inputs refused because the device's identity is unknown (and may not be created), disabled or out of scope. */
  refused: number;
  /** Identities created on first sight. */
  created: number;
  /** Times an ingest met STRATA_STORE_QUOTA and the source was held back. */
  quotaWaits: number;
  /** Cloud → device deliveries (method calls, desired patches, C2D) and those that failed. */
  commands: number;
  commandErrors: number;
}

/** What `receive` reports for one input. */
export interface ReceiveResult {
  deviceId: string;
  /** The identity the messages went in under (the device in identity mode, the gateway in protocol mode). */
  identity: string;
  /** Strata ids of the messages, durable. */
  ids: string[];
}
