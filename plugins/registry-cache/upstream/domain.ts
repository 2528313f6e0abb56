import { isIP } from "node:net";

/**
 * The registrable domain of a host name, approximated as its last two labels (three when the second-level
 * label is a common public suffix such as co.uk or com.au). No public-suffix list ships with Strata; the
 * approximation errs on the strict side for the registries that matter (docker.io, gcr.io, azurecr.io, ghcr.io).
 */
export function registrableDomain(host: string): string {
  const h = host.toLowerCase().replace(/\.$/, "");
  if (isIP(h) || !h.includes(".")) return h;
  const labels = h.split(".");
  const publicSecondLevel = new Set(["co", "com", "net", "org", "gov", "ac", "edu"]);
  const take = labels.length >= 3 && publicSecondLevel.has(labels[labels.length - 2]!) && labels[labels.length - 1]!.length === 2 ? 3 : 2;
  return labels.slice(-take).join(".");
}

/** Whether upstream credentials may be sent to `realmHost` for an upstream on `upstreamHost`. */
export function sameRegistrableDomain(upstreamHost: string, realmHost: string): boolean {
  const a = upstreamHost.toLowerCase();
  const b = realmHost.toLowerCase();
  if (a === b) return true;
  if (isIP(a) || isIP(b)) return false;
  return registrableDomain(a) === registrableDomain(b);
}
