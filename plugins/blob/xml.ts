/** The few XML shapes of the Blob REST API, written and read by hand (they are flat). */

export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

export function unesc(s: string): string {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&amp;/g, "&");
}

export const XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>';

export function errorXml(code: string, message: string): string {
  return `${XML_HEAD}<Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error>`;
}

export function metadataXml(meta: Record<string, string>): string {
  return `<Metadata>${Object.entries(meta).map(([k, v]) => `<${k}>${esc(v)}</${k}>`).join("")}</Metadata>`;
}

export type BlockListKind = "Committed" | "Uncommitted" | "Latest";

/** `<BlockList><Latest>id</Latest>…</BlockList>` → entries in order. */
export function parseBlockList(xml: string): { kind: BlockListKind; id: string }[] {
  const body = /<BlockList>([\s\S]*)<\/BlockList>/.exec(xml);
  if (!body) throw new Error("body is not a <BlockList>");
  const out: { kind: BlockListKind; id: string }[] = [];
  const re = /<(Committed|Uncommitted|Latest)>([^<]*)<\/\1>/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body[1]!)) !== null) out.push({ kind: m[1] as BlockListKind, id: unesc(m[2]!.trim()) });
  return out;
}

export function blockListXml(committed: readonly { id: string; size: number }[], uncommitted: readonly { id: string; size: number }[] | undefined): string {
  const blocks = (list: readonly { id: string; size: number }[]) => list.map((b) => `<Block><Name>${esc(b.id)}</Name><Size>${b.size}</Size></Block>`).join("");
  return `${XML_HEAD}<BlockList><CommittedBlocks>${blocks(committed)}</CommittedBlocks>${uncommitted ? `<UncommittedBlocks>${blocks(uncommitted)}</UncommittedBlocks>` : ""}</BlockList>`;
}

/** Blocks of a `<BlockList>` response section (cloud side). */
export function parseBlocks(xml: string, section: "CommittedBlocks" | "UncommittedBlocks"): { id: string; size: number }[] {
  const sec = new RegExp(`<${section}>([\\s\\S]*?)</${section}>`).exec(xml);
  if (!sec) return [];
  const out: { id: string; size: number }[] = [];
  const re = /<Block><Name>([^<]*)<\/Name><Size>(\d+)<\/Size><\/Block>/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(sec[1]!)) !== null) out.push({ id: unesc(m[1]!), size: Number(m[2]) });
  return out;
}
