// Test helpers: plugin modules whose start/stop behaviour a test scripts, recording what happened.
import { inject, injectable, type DependencyContainer } from "tsyringe";
import { z, type ZodType } from "zod";
import { TOKENS } from "../../../core/tokens.js";
import type { Logger } from "../../../core/log.js";
import type { Plugin, PluginModule } from "../../../core/plugin/api.js";

export interface FakeBehaviour {
  dependsOn?: string[];
  essential?: boolean;
  apiVersion?: string;
  schema?: ZodType;
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
  provides?: symbol[];
  start?: (signal: AbortSignal, self: FakePlugin) => Promise<void> | void;
  stop?: (self: FakePlugin) => Promise<void> | void;
  register?: (scope: DependencyContainer) => void;
}

export interface FakePlugin extends Plugin {
  readonly log: Logger;
  readonly config: unknown;
  signal?: AbortSignal;
}

/** Events in order: "register a", "construct a", "start a", "started a", "stop a". */
export function fakePlugin(name: string, events: string[], b: FakeBehaviour = {}): PluginModule {
  @injectable()
  class Fake implements FakePlugin {
    signal?: AbortSignal;
    constructor(@inject(TOKENS.Logger) readonly log: Logger, @inject(TOKENS.PluginConfig) readonly config: unknown) {
      events.push(`construct ${name}`);
    }
    async start(signal: AbortSignal): Promise<void> {
      this.signal = signal;
      events.push(`start ${name}`);
      await b.start?.(signal, this);
      events.push(`started ${name}`);
    }
    async stop(): Promise<void> {
      events.push(`stop ${name}`);
      await b.stop?.(this);
    }
  }
  return {
    manifest: {
      name,
      apiVersion: b.apiVersion ?? "^1",
      configSchema: b.schema ?? z.object({}),
      ...(b.dependsOn ? { dependsOn: b.dependsOn } : {}),
      ...(b.essential !== undefined ? { essential: b.essential } : {}),
      ...(b.startTimeoutMs ? { startTimeoutMs: b.startTimeoutMs } : {}),
      ...(b.stopTimeoutMs ? { stopTimeoutMs: b.stopTimeoutMs } : {}),
    },
    ...(b.provides ? { provides: b.provides } : {}),
    register(scope) {
      events.push(`register ${name}`);
      scope.registerSingleton(TOKENS.Plugin, Fake);
      b.register?.(scope);
    },
  };
}

/** A promise that settles only when the signal aborts (a start that hangs until told to give up). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((_, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}
