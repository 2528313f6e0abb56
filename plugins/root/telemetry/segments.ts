import { readdir } from "node:fs/promises";
import { join } from "node:path";

/**
 * The telemetry log on disk: a folder of segment files `<seq>.jsonl`, one JSON object per line, appended in
 * order and fsynced per batch. Plain files (not a LevelDB) so that `strata telemetry tail` can read them
 * while the gateway holds them open; a crash can leave at most a torn last line, which readers skip.
 */
export const SEGMENT_SUFFIX = ".jsonl";
const SEQ_DIGITS = 12;

export function segmentName(seq: number): string {
  return `${String(seq).padStart(SEQ_DIGITS, "0")}${SEGMENT_SUFFIX}`;
}

export function segmentSeq(name: string): number | undefined {
  if (!name.endsWith(SEGMENT_SUFFIX)) return undefined;
  const digits = name.slice(0, -SEGMENT_SUFFIX.length);
  return /^\d+$/.test(digits) ? Number(digits) : undefined;
}

/** Segment file names, oldest first; an absent folder is an empty log. */
export async function listSegments(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return names
    .filter((n) => segmentSeq(n) !== undefined)
    .sort((a, b) => segmentSeq(a)! - segmentSeq(b)!);
}

export function segmentPath(dir: string, name: string): string {
  return join(dir, name);
}

/** The folder of the log inside the plugin's data folder. */
export function telemetryLogDir(pluginDataDir: string): string {
  return join(pluginDataDir, "telemetry");
}
