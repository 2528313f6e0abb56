/**
 * Reads an `strace -f -e trace=fdatasync,fsync,write` log of crash-writer with markers on fd 3 and checks
 * that every acknowledgement was preceded by a sync that STARTED after that append was requested and
 * FINISHED before the acknowledgement: `B w k` (its write returned) < sync entry ≤ sync exit < `A w k`.
 *
 * strace -f serialises events: a thread stopped at a syscall exit waits for strace to log it, so a sync's
 * exit line precedes anything the woken JS thread does next. Calls interrupted by another thread appear as
 * `pid call(… <unfinished ...>` then `pid <... call resumed>…`; entry and exit are matched per pid.
 */
export interface TraceVerdict {
  acks: number;
  syncs: number;
  /** Acks with no covering sync: must be 0 for a durable store. */
  violations: string[];
}

const LINE = /^(\d+)\s+(.*)$/;
const CALL = /^(fdatasync|fsync|write)\((.*)$/;
const RESUMED = /^<\.\.\. (fdatasync|fsync|write) resumed>(.*)$/;
const MARKER = /^3, "([AB]) (\d+) (\d+)\\n"/;

export function checkTrace(text: string): TraceVerdict {
  const pending = new Map<string, { call: string; args: string; pos: number }>();
  const begun = new Map<string, number>();
  /** The latest entry position among syncs that have completed so far. */
  let latestCompletedSyncEntry = -1;
  let acks = 0;
  let syncs = 0;
  const violations: string[] = [];

  const finished = (call: string, args: string, entryPos: number, exitPos: number, result: string): void => {
    if (call === "fdatasync" || call === "fsync") {
      if (!/=\s*0\s*$/.test(result)) return; // a failed sync makes nothing durable
      syncs++;
      latestCompletedSyncEntry = Math.max(latestCompletedSyncEntry, entryPos);
      return;
    }
    const m = MARKER.exec(args);
    if (!m) return;
    const key = `${m[2]} ${m[3]}`;
    if (m[1] === "B") {
      begun.set(key, exitPos);
      return;
    }
    acks++;
    const b = begun.get(key);
    if (b === undefined) violations.push(`ack ${key} without a begin marker`);
    else if (!(latestCompletedSyncEntry > b)) violations.push(`ack ${key} at line ${entryPos + 1}: no sync started after line ${b + 1} and finished before it`);
  };

  const lines = text.split("\n");
  lines.forEach((raw, pos) => {
    const l = LINE.exec(raw);
    if (!l) return;
    const [, pid, rest] = l;
    const resumed = RESUMED.exec(rest);
    if (resumed) {
      const p = pending.get(pid);
      if (!p || p.call !== resumed[1]) return;
      pending.delete(pid);
      finished(p.call, p.args, p.pos, pos, resumed[2]);
      return;
    }
    const call = CALL.exec(rest);
    if (!call) return;
    if (rest.endsWith("<unfinished ...>")) pending.set(pid, { call: call[1], args: call[2], pos });
    else finished(call[1], call[2], pos, pos, call[2]);
  });
  return { acks, syncs, violations };
}
