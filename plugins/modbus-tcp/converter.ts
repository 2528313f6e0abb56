// Modbus register blocks ⇄ telemetry and writes. Pure: register words in, scaled typed values out.
import type { Converter } from "../../core/index.js";
import type { RegisterSpec } from "./config.js";

/** One poll of one device: each register spec with the words read for it. */
export interface RegisterReading {
  deviceId: string;
  reads: readonly { register: RegisterSpec; words: readonly number[] }[];
}

/** A holding-register write. */
export interface RegisterWrite {
  address: number;
  words: number[];
}

export function wordCount(type: RegisterSpec["type"]): number {
  return type === "uint16" || type === "int16" ? 1 : 2;
}

/** Words (big-endian, high word first, as most PLCs) → the scaled value. */
export function decode(r: RegisterSpec, words: readonly number[]): number {
  if (words.length !== wordCount(r.type) || words.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffff)) {
    throw new Error(`register ${r.name} (${r.type}) needs ${wordCount(r.type)} word(s) of 0..65535, got ${JSON.stringify(words)}`);
  }
  const b = Buffer.alloc(4);
  words.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  const raw = r.type === "uint16" ? b.readUInt16BE(0) : r.type === "int16" ? b.readInt16BE(0)
    : r.type === "uint32" ? b.readUInt32BE(0) : r.type === "int32" ? b.readInt32BE(0) : b.readFloatBE(0);
  return Number((raw * r.scale).toPrecision(12));
}

/** A scaled value → words. */
export function encode(r: RegisterSpec, value: number): number[] {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new Error(`${r.name} must be a number`);
  const raw = value / r.scale;
  const b = Buffer.alloc(4);
  const n = r.type === "float32" ? raw : Math.round(raw);
  if (r.type === "uint16") b.writeUInt16BE(n, 0);
  else if (r.type === "int16") b.writeInt16BE(n, 0);
  else if (r.type === "uint32") b.writeUInt32BE(n, 0);
  else if (r.type === "int32") b.writeInt32BE(n, 0);
  else b.writeFloatBE(n, 0);
  return wordCount(r.type) === 1 ? [b.readUInt16BE(0)] : [b.readUInt16BE(0), b.readUInt16BE(2)];
}

function writable(options: Readonly<Record<string, unknown>>, name: string): RegisterSpec {
  const regs = (options.registers ?? []) as RegisterSpec[];
  const r = regs.find((x) => x.name === name);
  if (!r) throw new Error(`no register named ${name}`);
  if (r.table !== "holding" || !r.writable) throw new Error(`register ${name} is not writable (set writable = true on a holding register)`);
  return r;
}

const sampleRegs: RegisterSpec[] = [
  { name: "temperature", table: "holding", address: 0, type: "int16", scale: 0.1, writable: false },
  { name: "count", table: "input", address: 4, type: "uint32", scale: 1, writable: false },
  { name: "setpoint", table: "holding", address: 10, type: "uint16", scale: 1, writable: true },
];

export const modbusConverter: Converter<RegisterReading, RegisterWrite> = {
  model: "modbus-register-map",
  description: "holding/input registers by a register map from config, scaled and typed",
  recognize: (raw) => raw.deviceId,
  fromDevice(raw) {
    const body: Record<string, number> = {};
    for (const { register, words } of raw.reads) body[register.name] = decode(register, words);
    return [{ body }];
  },
  toDevice: {
    desired: {
      "*": (value, meta) => {
        const r = writable(meta.options, meta.key ?? "");
        return [{ address: r.address, words: encode(r, value as number) }];
      },
    },
    methods: {
      /** `write` with `{ "<register>": value, … }`. */
      write: (payload, meta) => {
        if (!payload || typeof payload !== "object") throw new Error("write takes an object of register name → value");
        return Object.entries(payload as Record<string, unknown>).map(([name, v]) => {
          const r = writable(meta.options, name);
          return { address: r.address, words: encode(r, v as number) };
        });
      },
    },
  },
  samples: {
    fromDevice: [{
      raw: { deviceId: "plc-1", reads: [{ register: sampleRegs[0]!, words: [0xff38] }, { register: sampleRegs[1]!, words: [1, 2] }, { register: sampleRegs[2]!, words: [21] }] },
      deviceId: "plc-1",
      telemetry: [{ body: { temperature: -20, count: 65538, setpoint: 21 } }],
    }],
    malformed: [{ raw: { deviceId: "plc-1", reads: [{ register: sampleRegs[1]!, words: [1] }] } }],
    methods: [{ name: "write", payload: { setpoint: 25 }, options: { registers: sampleRegs }, commands: [{ address: 10, words: [25] }] }],
    desired: [{ key: "setpoint", value: 30, options: { registers: sampleRegs }, commands: [{ address: 10, words: [30] }] }],
  },
};
