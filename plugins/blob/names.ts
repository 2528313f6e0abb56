import { CONTAINER_NAME } from "./config.js";

/** Why a name is refused, or undefined when it is acceptable. */
export function containerNameProblem(name: string): string | undefined {
  if (name === "$root" || name === "$logs") return `container "${name}" is reserved`;
  return CONTAINER_NAME.test(name) ? undefined : `container name "${name}" must be 3-63 of a-z, 0-9 and single hyphens, starting and ending with a letter or digit`;
}

/**
 * Blob names: 1–1024 characters. Storage keys blobs by a hash, so no name can reach outside the data folder;
 * traversal-looking names (`..` or `.` segments, backslashes) and control characters are refused anyway so a
 * client that means a path learns at once that it will not be one.
 */
export function blobNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > 1024) return "blob name must be 1-1024 characters";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(name)) return "blob name must not contain control characters or backslashes";
  if (name.split("/").some((s) => s === "." || s === "..")) return `blob name "${name}" has a "." or ".." segment (path traversal)`;
  return undefined;
}

/** IoT Edge's target templates: `%h` hub, `%d` device, `%m` module, `%c` source container. Lower-cased. */
export function expandTarget(template: string, vars: { hub: string; device: string; module?: string; container: string }): string {
  return template
    .replace(/%h/g, vars.hub)
    .replace(/%d/g, vars.device)
    .replace(/%m/g, vars.module ?? "")
    .replace(/%c/g, vars.container)
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^-+|-+$/g, "");
}
