// Sample plugins for the conformance kit's own tests: one that behaves, and two with the faults the kit
// exists to catch (a constructor parameter without @inject, a listening socket left open by stop()).
import net from "node:net";
import { once } from "node:events";
import { inject, injectable } from "tsyringe";
import { z } from "zod";
import { TOKENS } from "../../../core/tokens.js";
import type { Logger } from "../../../core/log.js";
import { PluginError } from "../../../core/errors.js";
import { definePlugin, type Plugin } from "../../../core/plugin/api.js";

export const EchoConfig = z.object({
  address: z.string().default("127.0.0.1"),
  port: z.int().min(0).max(65535).default(0),
});
type EchoConfig = z.output<typeof EchoConfig>;

/** Listens on a TCP port and echoes; abortable start, idempotent stop. */
@injectable()
export class EchoPlugin implements Plugin {
  private server?: net.Server;
  constructor(@inject(TOKENS.Logger) private readonly log: Logger, @inject(TOKENS.PluginConfig) private readonly config: EchoConfig) {}

  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const server = net.createServer((s) => s.pipe(s));
    this.server = server;
    server.listen(this.config.port, this.config.address);
    const onAbort = () => server.close();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await once(server, "listening", { signal });
      this.log.info({ port: (server.address() as net.AddressInfo).port }, "echo listening");
    } catch (err) {
      await this.stop();
      throw new PluginError("echo", "STRATA_ECHO_LISTEN", `cannot listen on ${this.config.address}:${this.config.port}`, { cause: err });
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server?.listening) await new Promise<void>((r) => server.close(() => r()));
    else server?.close();
  }
}

export const goodPlugin = definePlugin({
  manifest: { name: "echo", apiVersion: "^1", configSchema: EchoConfig },
  register: (scope) => scope.register(TOKENS.Plugin, { useClass: EchoPlugin }),
});

/** The second parameter lacks @inject: under tsx/esbuild it would silently be undefined. */
@injectable()
export class ForgetfulPlugin implements Plugin {
  constructor(@inject(TOKENS.Logger) readonly log: Logger, readonly config: EchoConfig) {}
  async start(signal: AbortSignal): Promise<void> { signal.throwIfAborted(); }
  async stop(): Promise<void> {}
}

export const missingInjectPlugin = definePlugin({
  manifest: { name: "forgetful", apiVersion: "^1", configSchema: z.object({}) },
  register: (scope) => scope.register(TOKENS.Plugin, { useClass: ForgetfulPlugin }),
});

/** Every server any LeakyPlugin opened, so the test can close them after the kit has caught the leak. */
export const leakedServers: net.Server[] = [];

/** stop() forgets to close its server. */
@injectable()
export class LeakyPlugin implements Plugin {
  constructor(@inject(TOKENS.PluginConfig) private readonly config: EchoConfig) {}
  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const server = net.createServer();
    leakedServers.push(server);
    server.listen(this.config.port, this.config.address);
    await once(server, "listening");
  }
  async stop(): Promise<void> {}
}

export const leakyPlugin = definePlugin({
  manifest: { name: "leaky", apiVersion: "^1", configSchema: EchoConfig },
  register: (scope) => scope.register(TOKENS.Plugin, { useClass: LeakyPlugin }),
});
