import ModbusRTU from "modbus-serial";
import {
  inject, injectable, isStrataError, PluginError, meterHead, TOKENS, Translator,
  type Hub, type Identities, type Metrics, type Logger, type Plugin, type StrataConfig,
} from "../../core/index.js";
import { wordCount } from "./converter.js";
import type { ModbusConfig, ModbusDevice } from "./config.js";
import { modbusConverter, type RegisterReading, type RegisterWrite } from "./converter.js";

export const PLUGIN_NAME = "modbus-tcp";

/** One TCP connection to a Modbus server (a PLC or a gateway serving several unit ids). Requests are serialised. */
class ModbusConnection {
  private client: ModbusRTU | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: string, private readonly port: number, private readonly timeoutMs: number) {}

  /** Runs `work` alone on the connection (connecting first); a failure drops the connection for the next call. */
  run<T>(unit: number, work: (c: ModbusRTU) => Promise<T>): Promise<T> {
    const next = this.chain.then(async () => {
      if (!this.client?.isOpen) {
        this.close();
        const c = new ModbusRTU();
        this.client = c;
        await c.connectTCP(this.host, { port: this.port });
        c.setTimeout(this.timeoutMs);
      }
      this.client.setID(unit);
      try {
        return await work(this.client);
      } catch (err) {
        this.close();
        throw err;
      }
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  close(): void {
    const c = this.client;
    this.client = undefined;
    if (c?.isOpen) c.close(() => undefined);
    else (c as unknown as { _port?: { destroy?: () => void } } | undefined)?._port?.destroy?.();
  }
}

/**
 * Polls PLCs over Modbus TCP by a register map (scaling, types) and translates each unit into telemetry,
 * one identity per unit by default; writes holding registers from desired properties and the `write` method.
 */
@injectable()
export class ModbusTcpPlugin implements Plugin {
  private translator: Translator<RegisterReading, RegisterWrite> | undefined;
  private readonly connections = new Map<string, ModbusConnection>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = true;

  constructor(
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.PluginConfig) private readonly config: ModbusConfig,
    @inject(TOKENS.Config) private readonly gateway: StrataConfig,
    @inject(TOKENS.Hub) private readonly hub: Hub,
    @inject(TOKENS.Identities) private readonly identities: Identities,
    /** Optional: per-head counters on /metrics when the gateway has a registry (not in a bare plugin test). */
    @inject(TOKENS.Metrics, { isOptional: true }) private readonly metrics?: Metrics,
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new PluginError(PLUGIN_NAME, "STRATA_TRANSLATION_START_ABORTED", "start was aborted before polling began");
    const byId = new Map(this.config.devices.map((d) => [d.id, d]));
    try {
      const metered = meterHead(this.metrics, PLUGIN_NAME, { hub: this.hub, identities: this.identities });
      const translator = new Translator<RegisterReading, RegisterWrite>(metered.hub, metered.identities, {
        plugin: PLUGIN_NAME,
        mode: this.config.mode,
        autoCreate: this.config.auto_create,
        isRoot: this.gateway.parent === undefined,
        quotaRetryMs: this.config.quota_retry_ms,
        converters: [modbusConverter],
        deviceOptions: (id) => ({ registers: byId.get(id)?.registers ?? [] }),
        transport: { execute: (id, writes) => this.write(byId.get(id), writes) },
        logger: this.log,
      });
      translator.start();
      this.translator = translator;
      this.stopped = false;
      for (const d of this.config.devices) {
        // Online before the first poll: the unit's twin and methods work even while the PLC is unreachable.
        await translator.online(d.id).catch((err: unknown) => this.log.warn({ err, device: d.id }, "modbus unit not brought online"));
        this.schedule(d, 0);
      }
    } catch (err) {
      await this.stop();
      throw err instanceof PluginError ? err : new PluginError(PLUGIN_NAME, isStrataError(err) ? err.code : "STRATA_TRANSLATION_START_FAILED", (err as Error).message, { cause: err });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.translator?.stop();
    this.translator = undefined;
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
  }

  private connection(d: ModbusDevice): ModbusConnection {
    const key = `${d.host}:${d.port}`;
    let c = this.connections.get(key);
    if (!c) this.connections.set(key, (c = new ModbusConnection(d.host, d.port, this.config.timeout_ms)));
    return c;
  }

  private schedule(d: ModbusDevice, delay: number): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.poll(d).finally(() => this.schedule(d, this.config.poll_ms));
    }, delay);
    this.timers.add(t);
  }

  /** One poll: read every register, hand the block to the translator (which holds until durable). */
  private async poll(d: ModbusDevice): Promise<void> {
    const translator = this.translator;
    if (!translator) return;
    let reading: RegisterReading;
    try {
      reading = await this.connection(d).run(d.unit, async (c) => {
        const reads: { register: ModbusDevice["registers"][number]; words: number[] }[] = [];
        for (const register of d.registers) {
          const n = wordCount(register.type);
          const r = register.table === "holding" ? await c.readHoldingRegisters(register.address, n) : await c.readInputRegisters(register.address, n);
          reads.push({ register, words: [...r.data] });
        }
        return { deviceId: d.id, reads };
      });
    } catch (err) {
      if (!this.stopped) this.log.warn({ err, device: d.id, host: d.host, port: d.port, unit: d.unit }, "modbus poll failed");
      return;
    }
    await translator.receive(reading, { deviceId: d.id, address: `${d.host}:${d.port}/${d.unit}` }).catch((err: unknown) => {
      if (!isStrataError(err)) this.log.error({ err, device: d.id }, "modbus reading not taken");
    });
  }

  private async write(d: ModbusDevice | undefined, writes: readonly RegisterWrite[]): Promise<unknown> {
    if (!d) throw new Error("unknown modbus device");
    await this.connection(d).run(d.unit, async (c) => {
      for (const w of writes) await c.writeRegisters(w.address, w.words);
    });
    return { written: writes.length };
  }
}
