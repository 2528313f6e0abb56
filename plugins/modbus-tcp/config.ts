import { z } from "zod";
import { translationSettings } from "../../core/index.js";

export const registerSchema = z.strictObject({
  /** The telemetry field and desired-property / method key. */
  name: z.string().min(1),
  table: z.enum(["holding", "input"]).default("holding"),
  address: z.number().int().min(0).max(65535),
  type: z.enum(["uint16", "int16", "uint32", "int32", "float32"]).default("uint16"),
  /** Telemetry value = raw × scale; a write sends value ÷ scale. */
  scale: z.number().positive().default(1),
  /** Holding registers only: may be written from a desired property or the `write` method. */
  writable: z.boolean().default(false),
});
export type RegisterSpec = z.output<typeof registerSchema>;

export const deviceSchema = z.strictObject({
  /** The device id (identity mode: its identity). */
  id: z.string().min(1),
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(1).max(65535).default(502),
  /** Modbus unit id (slave id). */
  unit: z.number().int().min(0).max(255).default(1),
  registers: z.array(registerSchema).min(1),
});
export type ModbusDevice = z.output<typeof deviceSchema>;

/** `[plugins.modbus-tcp]`: PLCs polled over Modbus TCP, one identity per unit by default. */
export const modbusConfigSchema = z.strictObject({
  ...translationSettings("identity"),
  poll_ms: z.number().int().min(50).default(1000),
  /** Per request (read or write). */
  timeout_ms: z.number().int().min(50).default(2000),
  devices: z.array(deviceSchema).default([]),
});
export type ModbusConfig = z.output<typeof modbusConfigSchema>;
