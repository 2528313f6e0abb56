import type { IncomingMessage, ServerResponse } from "node:http";
import { StrataError } from "../errors.js";

/**
 * Owns a request whose path lies under its prefix: reads the body as a stream and writes the response.
 * May be async; a rejection is logged and answered with 500 (or the connection dropped once headers went out).
 */
export type RawHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

interface RawMount {
  prefix: string;
  handler: RawHandler;
}

/** Path-prefix table for raw handlers; the longest prefix wins. */
export class RawMounts {
  private mounts: RawMount[] = [];

  add(prefix: string, handler: RawHandler): () => void {
    const normal = normalize(prefix);
    if (this.mounts.some((m) => m.prefix === normal)) {
      throw new StrataError(
        "STRATA_HTTP_MOUNT_CONFLICT",
        `raw prefix "${normal}" is already mounted by another plugin; each prefix has one owner`,
      );
    }
    const mount = { prefix: normal, handler };
    this.mounts = [...this.mounts, mount].sort((a, b) => b.prefix.length - a.prefix.length);
    return () => {
      this.mounts = this.mounts.filter((m) => m !== mount);
    };
  }

  match(url: string | undefined): RawMount | undefined {
    if (this.mounts.length === 0 || !url) return undefined;
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    return this.mounts.find((m) => m.prefix === "/" || path === m.prefix || path.startsWith(`${m.prefix}/`));
  }
}

function normalize(prefix: string): string {
  if (!prefix.startsWith("/")) {
    throw new StrataError("STRATA_HTTP_BAD_MOUNT", `raw prefix "${prefix}" must start with "/", e.g. "/v2"`);
  }
  return prefix.length > 1 && prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
}
