import type { CheckResult, GatewayState } from "../../core/index.js";
import { clockVerdict, formatOffset } from "./clock.js";
import type { TraceView, TreeNode, TreeView } from "./tree.js";

/** "4 s", "3 min", "2 h", "5 d". */
export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

function linkOf(n: TreeNode): string {
  if (n.depth === 0) return "root";
  return n.state?.link?.status ?? "unknown";
}

/** `strata tree`: one line per gateway, indented under its parent. */
export function renderTree(view: TreeView): string {
  const rows = view.nodes.map((n) => {
    const name = `${"  ".repeat(n.depth)}${n.depth > 0 ? "└ " : ""}${n.device}`;
    const s = n.state;
    const queue = s ? `${s.upstream.depth}` : "-";
    const oldest = s ? ago(s.upstream.oldestAgeMs) : "-";
    const seen = n.seenAt === undefined ? "never" : n.depth === 0 ? "now" : `${ago(view.now - n.seenAt)} ago`;
    const clock = s?.clock ? formatOffset(s.clock.offsetMs) : "-";
    return [name, linkOf(n), String(n.children), queue, oldest, s ? `${s.drainPerSec}/s` : "-", seen, clock];
  });
  // CLOCK: the gateway's clock against its parent's (positive: ahead).
  const head = ["GATEWAY", "LINK", "CHILDREN", "QUEUE", "OLDEST", "DRAIN", "LAST SEEN", "CLOCK"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

/** `strata trace <id>`: the hops from origin to root and where the message is. */
export function renderTrace(t: TraceView): string {
  const lines = [`${t.id}: ${t.where}`];
  for (const hop of t.path) {
    const state = hop.accepted === true ? "accepted" : hop.accepted === false ? "not yet" : "no report";
    const when = hop.reportedAt !== undefined ? ` (as of ${new Date(hop.reportedAt).toISOString()})` : "";
    lines.push(`  ${hop.device.padEnd(20)} ${state}${when}`);
  }
  return lines.join("\n");
}

/** `strata tree --check`: each gateway's newest `strata check`; failed when any line failed or a gateway never reported. */
export function renderTreeCheck(view: TreeView): { text: string; failed: boolean } {
  let failed = false;
  const out: string[] = [];
  for (const n of view.nodes) {
    const checks = n.state?.checks;
    if (!checks) {
      failed = true;
      out.push(`${n.device}: fail  no check report yet (is the gateway running with [plugins.metrics] and connected?)`);
      continue;
    }
    const lines = [...checks.lines, ...clockLine(n.state!, view.now)];
    const worst = lines.some((l) => l.verdict === "fail") ? "fail" : lines.some((l) => l.verdict === "warn") ? "warn" : "ok";
    if (worst === "fail") failed = true;
    out.push(`${n.device}: ${worst}  (checked ${ago(view.now - checks.at)} ago)`);
    for (const l of lines) out.push(`  ${l.verdict.padEnd(4)}  ${l.what.padEnd(12)} ${l.detail}`);
  }
  return { text: out.join("\n"), failed };
}

/** The gateway's own clock measurement (ms, against its parent) as a check line; none on the root. */
function clockLine(state: GatewayState, now: number): CheckResult[] {
  const c = state.clock;
  if (!c) return [];
  const verdict = clockVerdict(c.offsetMs);
  const precision = c.source === "strata" ? `±${Math.ceil(c.rttMs / 2)} ms` : "±1 s, the parent has no metrics plugin";
  const fix = verdict === "ok" ? "" : "; SAS tokens allow 300 s: synchronise the clock (NTP)";
  return [{ verdict, what: "clock offset", detail: `${formatOffset(c.offsetMs)} from the parent (${precision}, measured ${ago(now - c.at)} ago)${fix}` }];
}
