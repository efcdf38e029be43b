// Delta collection: what an update records before it changes the index (the node's class,
// routes, SSH contribution) and the Touched set it fills while it works, from which the
// PolicyDelta is assembled.
import type { NodeFacts, UserFacts } from '../facts.js';
import { sameStrings } from './node-lists.js';
import type { NodeRec } from './records.js';
import type { SrcList } from './src-list.js';
import type { SshRuleInfo } from './ssh-rules.js';

/** A node change for #applyNodes: new facts, or null for removal. */
export interface NodeChange {
  readonly id: number;
  readonly facts: NodeFacts | null;
}

export interface UserChange {
  readonly id: number;
  readonly facts: UserFacts | null;
}

/** A changed node's outputs before the change. */
export interface RouteNotes {
  /** router -> viewers whose view of it changed. */
  readonly pairs: Map<number, Set<number>>;
  readonly selfChanged: Set<number>;
}

/** What #settleRoutes needs from before routers changed. */
export interface RoutesBefore {
  readonly prefixes: ReadonlySet<string>;
  readonly via: Map<string, Map<NodeRec, number | null>>;
}

export interface NodeBefore {
  readonly node: NodeRec;
  /** Whether it served subnet routes (its views were recorded per viewer). */
  readonly router: boolean;
  readonly peers: ReadonlySet<number>;
  /** How peers saw it, by #viewKey. */
  readonly views: ReadonlyMap<string, string>;
  readonly viewerKeys: ReadonlyMap<number, string>;
  /** How it saw routers, exit nodes and other changed nodes. */
  readonly asViewer: ReadonlyMap<number, string>;
  readonly ipv6Only: boolean;
  readonly filter: string;
  readonly ssh: string;
  readonly self: string;
  readonly sourceCaps: string;
}

/** What one update touched, with the state it found, for #settle and #sshCandidates. */
export class Touched {
  /** Each touched list's size and key before, and the entries before of each node touched in it. */
  readonly lists = new Map<SrcList, { readonly size: number; readonly key: string; readonly hasNodeEntries: boolean; readonly nodes: Map<number, string> }>();
  /** Atom -> whether it existed (named some node) before. */
  readonly atoms = new Map<number, boolean>();
  readonly ssh = new Map<SshRuleInfo, Map<number, { before: string | null; after: string | null }>>();
  readonly localparts: { readonly info: SshRuleInfo; readonly userId: number }[] = [];
  /** Principal sequences before, of rules a moving node was a source of. */
  readonly principals = new Map<SshRuleInfo, string>();
  /** Classes whose templates must be rebuilt and compared. */
  readonly templates = new Set<number>();
  readonly newClasses = new Set<number>();

  noteList(list: SrcList, nodeId: number): void {
    let was = this.lists.get(list);
    if (was === undefined) this.lists.set(list, (was = { size: list.size, key: list.key, hasNodeEntries: list.hasNodeEntries, nodes: new Map() }));
    if (!was.nodes.has(nodeId)) was.nodes.set(nodeId, list.entriesOf(nodeId));
  }

  noteAtom(atom: number, existed: boolean): void {
    if (!this.atoms.has(atom)) this.atoms.set(atom, existed);
  }

  noteSsh(info: SshRuleInfo, nodeId: number, contribution: string | null, before: boolean): void {
    let byNode = this.ssh.get(info);
    if (byNode === undefined) this.ssh.set(info, (byNode = new Map()));
    const entry = byNode.get(nodeId);
    if (before) byNode.set(nodeId, { before: contribution, after: null });
    else if (entry === undefined) byNode.set(nodeId, { before: null, after: contribution });
    else entry.after = contribution;
  }
}

export function push(map: Map<number, number[]>, key: number, value: number): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

/** Whether two facts of one node agree on everything but name and online. */
export function samePolicyFacts(a: NodeFacts, b: NodeFacts): boolean {
  return (
    a.ipv4 === b.ipv4 &&
    a.ipv6 === b.ipv6 &&
    a.userId === b.userId &&
    (a.registeredOrder ?? a.id) === (b.registeredOrder ?? b.id) &&
    sameStrings(a.tags, b.tags) &&
    sameStrings(a.advertisedRoutes, b.advertisedRoutes) &&
    sameStrings(a.approvedRoutes, b.approvedRoutes) &&
    JSON.stringify(a.postureAttributes ?? {}) === JSON.stringify(b.postureAttributes ?? {})
  );
}
