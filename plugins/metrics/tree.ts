import {
  parseStrataId, type GatewayState, type Identities, type IdentityRecord, type Kv, type Logger,
} from "../../core/index.js";

/** One gateway in the tree as the root sees it. */
export interface TreeNode {
  device: string;
  /** The parent gateway's device id; absent for the root. */
  parent?: string;
  depth: number;
  /** Child gateways registered under it. */
  children: number;
  /** Its newest state (the root's own is built when asked). */
  state?: GatewayState;
  /** Root clock when that state arrived: last seen. */
  seenAt?: number;
}

export interface TreeView {
  root: string;
  now: number;
  /** Depth first, the root first. */
  nodes: TreeNode[];
}

export interface TraceHop {
  device: string;
  /** true: this hop accepted it (durable there); false: not yet, as of `reportedAt`; undefined: no report. */
  accepted?: boolean;
  reportedAt?: number;
  /** This hop's `$upstream` as of its report: where the message waits when the next hop has not accepted it. */
  upstream?: { depth: number; oldestAgeMs: number };
}

export interface TraceView {
  id: string;
  origin: string;
  seq: number;
  /** Origin first, the root last. Empty when the origin is not a gateway of this tree. */
  path: TraceHop[];
  /** When the root accepted it, if it did recently (the root remembers its last 10 000 arrivals). */
  rootAcceptedAt?: number;
  /** One line: where the message is. */
  where: string;
}

/** Gateways' newest states at the root, kept in `kv("metrics-tree")` so last-seen survives a restart. */
export class TreeStore {
  private readonly states = new Map<string, { state: GatewayState; seenAt: number }>();

  constructor(private readonly kv: Kv<{ state: GatewayState; seenAt: number }>, private readonly log: Logger) {}

  async load(): Promise<void> {
    for await (const [device, entry] of this.kv.entries()) this.states.set(device, entry);
  }

  /** Keeps the state when it is newer than the one held; durable when it resolves. */
  async accept(state: GatewayState, seenAt: number): Promise<void> {
    const held = this.states.get(state.device);
    if (held && held.state.at >= state.at) return;
    const entry = { state, seenAt };
    this.states.set(state.device, entry);
    await this.kv.put(state.device, entry).catch((err: unknown) => this.log.warn({ err, device: state.device }, "gateway state not persisted"));
  }

  get(device: string): { state: GatewayState; seenAt: number } | undefined {
    return this.states.get(device);
  }

  /** The hierarchy from the identity registry (edge identities and their parents) with each one's state. */
  view(identities: Pick<Identities, "self" | "list">, self: GatewayState, now: number): TreeView {
    const root = identities.self;
    const gateways = identities.list().filter((r: IdentityRecord) => r.edge && !r.moduleId && r.id !== root);
    const parentOf = new Map<string, string>();
    const known = new Set([root, ...gateways.map((g) => g.id)]);
    for (const g of gateways) parentOf.set(g.id, g.parent && known.has(g.parent) ? g.parent : root);
    const childrenOf = new Map<string, string[]>();
    for (const [child, parent] of parentOf) childrenOf.set(parent, [...(childrenOf.get(parent) ?? []), child]);
    const nodes: TreeNode[] = [];
    const visit = (device: string, depth: number, seen: Set<string>): void => {
      if (seen.has(device)) return; // a parent cycle in the registry: show each gateway once
      seen.add(device);
      const kids = (childrenOf.get(device) ?? []).sort();
      const held = device === root ? { state: self, seenAt: now } : this.states.get(device);
      nodes.push({
        device, depth, children: kids.length,
        ...(device === root ? {} : { parent: parentOf.get(device)! }),
        ...(held ? { state: held.state, seenAt: held.seenAt } : {}),
      });
      for (const k of kids) visit(k, depth + 1, seen);
    };
    visit(root, 0, new Set());
    return { root, now, nodes };
  }

  /** Where `id` is: the hops from its origin to the root and which of them accepted it (their watermarks). */
  trace(id: string, identities: Pick<Identities, "self" | "authChain">, self: GatewayState, rootAcceptedAt: number | undefined): TraceView {
    const parsed = parseStrataId(id);
    if (!parsed) return { id, origin: "", seq: 0, path: [], where: `"${id}" is not a Strata id (origin:sequence, e.g. gw5:1234)` };
    const { origin, seq } = parsed;
    const chain = origin === identities.self ? [origin] : identities.authChain(origin);
    if (!chain) return { id, origin, seq, path: [], where: `${origin} is not a gateway of this tree` };
    const path: TraceHop[] = chain.map((device, i) => {
      const held = device === identities.self ? { state: self, seenAt: self.at } : this.states.get(device);
      const accepted = i === 0 ? true : held ? (held.state.accepted[origin] ?? 0) >= seq : undefined;
      return {
        device,
        ...(accepted !== undefined ? { accepted } : {}),
        ...(held ? { reportedAt: held.state.at, upstream: held.state.upstream } : {}),
      };
    });
    if (rootAcceptedAt !== undefined) path[path.length - 1]!.accepted = true;
    return { id, origin, seq, path, ...(rootAcceptedAt !== undefined ? { rootAcceptedAt } : {}), where: whereIs(path, rootAcceptedAt) };
  }
}

function whereIs(path: readonly TraceHop[], rootAcceptedAt: number | undefined): string {
  const last = path[path.length - 1]!;
  if (last.accepted) return rootAcceptedAt !== undefined ? `reached the root ${last.device} at ${new Date(rootAcceptedAt).toISOString()}` : `reached the root ${last.device}`;
  // The highest hop known to hold it; the message waits in that hop's $upstream.
  let at = 0;
  for (let i = 0; i < path.length; i++) if (path[i]!.accepted) at = i;
  const hop = path[at]!;
  const next = path[at + 1];
  const unknown = next && next.accepted === undefined ? ` (${next.device} has not reported yet)` : "";
  const q = hop.upstream ? `: its $upstream held ${hop.upstream.depth} message(s), oldest ${Math.round(hop.upstream.oldestAgeMs / 1000)} s` : "";
  return `queued at ${hop.device}, not yet accepted by ${next?.device ?? "its parent"}${unknown}${q}`;
}
