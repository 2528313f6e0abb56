// Counters of every running translator, by hub and plugin name: what the conformance kit, tests and tools
// read without holding the plugin instance. Keyed by the hub itself, not a metered stand-in of it (a plugin
// metering its head hands the translator a wrapper; readers hold the gateway's hub).
import type { Hub } from "../hub/types.js";
import { unmetered } from "../metrics/head-meter.js";
import type { TranslationStats } from "./types.js";

const byHub = new WeakMap<Hub, Map<string, TranslationStats>>();

export function registerStats(hub: Hub, plugin: string, stats: TranslationStats): void {
  let m = byHub.get(unmetered(hub));
  if (!m) byHub.set(unmetered(hub), (m = new Map()));
  m.set(plugin, stats);
}

export function unregisterStats(hub: Hub, plugin: string, stats: TranslationStats): void {
  const m = byHub.get(unmetered(hub));
  if (m?.get(plugin) === stats) m.delete(plugin);
}

/** The counters of the translator `plugin` runs on `hub` (undefined when it is not running). */
export function translationStats(hub: Hub, plugin: string): TranslationStats | undefined {
  return byHub.get(unmetered(hub))?.get(plugin);
}
