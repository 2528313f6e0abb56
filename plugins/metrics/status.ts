import { formatOffset } from "./clock.js";
import { ago } from "./render.js";
import type { TreeView } from "./tree.js";

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * `/status`: the tree, queues and links as one static HTML page (no script, no external asset: it must
 * render on a locked-down box). Each gateway is a `<tr data-device=…>` so tests and scrapers can find it.
 */
export function renderStatusPage(view: TreeView): string {
  const rows = view.nodes.map((n) => {
    const s = n.state;
    const link = n.depth === 0 ? "root" : s?.link?.status ?? "unknown";
    const seen = n.seenAt === undefined ? "never" : n.depth === 0 ? "now" : `${ago(view.now - n.seenAt)} ago`;
    const failing = s?.checks?.lines.filter((l) => l.verdict === "fail").map((l) => `${l.what}: ${l.detail}`) ?? [];
    return `<tr data-device="${esc(n.device)}" data-depth="${n.depth}" class="link-${esc(link)}">` +
      `<td class="name" style="padding-left:${0.5 + n.depth * 1.5}em">${esc(n.device)}</td>` +
      `<td class="link">${esc(link)}</td><td class="children">${n.children}</td>` +
      `<td class="queue">${s ? s.upstream.depth : "-"}</td><td class="oldest">${s ? ago(s.upstream.oldestAgeMs) : "-"}</td>` +
      `<td class="drain">${s ? `${s.drainPerSec}/s` : "-"}</td><td class="seen">${seen}</td>` +
      `<td class="clock">${s?.clock ? formatOffset(s.clock.offsetMs) : "-"}</td>` +
      `<td class="checks">${failing.length ? `<span class="fail">${esc(failing.join("; "))}</span>` : s?.checks ? "ok" : "-"}</td></tr>`;
  }).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Strata — ${esc(view.root)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;min-width:60em}
th,td{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left}
th{background:#f3f3f3}
.link-connected .link,.link-root .link{color:#176317}
.link-offline .link,.link-connecting .link,.link-unknown .link{color:#a33}
.fail{color:#a33}
</style></head>
<body><h1>Strata tree at ${esc(view.root)}</h1>
<p id="generated">generated ${esc(new Date(view.now).toISOString())}, ${view.nodes.length} gateway(s)</p>
<table id="tree"><thead><tr><th>gateway</th><th>link</th><th>children</th><th>queue</th><th>oldest</th><th>drain</th><th>last seen</th><th title="clock offset to the parent (positive: ahead)">clock</th><th>checks</th></tr></thead>
<tbody>
${rows}
</tbody></table></body></html>
`;
}
