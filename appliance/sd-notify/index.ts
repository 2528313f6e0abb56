// READY / WATCHDOG / STOPPING for systemd (Type=notify) through the sd_notify N-API addon next to this file.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { StrataError } from "../../core/errors.js";

interface Addon {
  notify(socketPath: string, message: string): number;
}

/** Where the build puts the addon: next to the compiled index.js; STRATA_SD_NOTIFY_ADDON overrides it (tests). */
export const ADDON_FILE = process.env.STRATA_SD_NOTIFY_ADDON ?? join(__dirname, "sd_notify.node");

export interface Notifier {
  /** False outside systemd (no NOTIFY_SOCKET): every call is then a no-op. */
  readonly active: boolean;
  notify(message: string): void;
  ready(status?: string): void;
  stopping(): void;
  /** Pings WATCHDOG=1 at half of WATCHDOG_USEC while the event loop runs; returns the stop function. */
  startWatchdog(): () => void;
}

export function loadAddon(file = ADDON_FILE): Addon {
  if (!existsSync(file)) throw new StrataError("STRATA_SYSTEMD_ADDON", `the sd_notify addon ${file} is missing; rebuild the bundle (npm run appliance) or run without Type=notify`);
  // A .node file is loaded by require; it is ABI-stable across Node versions (N-API).
  return require(file) as Addon;
}

/** A notifier from the environment systemd gives the main process (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID). */
export function systemdNotifier(env: NodeJS.ProcessEnv = process.env, addon?: Addon): Notifier {
  const socket = env.NOTIFY_SOCKET;
  const active = !!socket;
  const lib = active ? (addon ?? loadAddon()) : undefined;
  const notify = (message: string) => {
    if (lib && socket) lib.notify(socket, message);
  };
  return {
    active,
    notify,
    ready: (status) => notify(`READY=1\nMAINPID=${process.pid}${status ? `\nSTATUS=${status}` : ""}`),
    stopping: () => notify("STOPPING=1"),
    startWatchdog: () => {
      const usec = Number(env.WATCHDOG_USEC);
      const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
      if (!active || !Number.isFinite(usec) || usec <= 0 || !forUs) return () => {};
      const t = setInterval(() => notify("WATCHDOG=1"), Math.max(1, Math.floor(usec / 2000)));
      t.unref();
      return () => clearInterval(t);
    },
  };
}
