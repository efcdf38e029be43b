// Small helpers over node and string lists the index keeps sorted by id.
import type { IdentityClass, NodeRec } from './records.js';

export function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export { sameNumbers } from '../../util/sorted.js';

export function sameOptionalLists(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function sameStringSets(a: ReadonlySet<string> | null, b: ReadonlySet<string> | null): boolean {
  if (a === null || b === null) return a === b;
  return a.size === b.size && [...a].every((v) => b.has(v));
}

/** Inserts a node into a list kept in node-id order. */
export function insertById(list: NodeRec[], n: NodeRec): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.id < n.id) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, n);
}

/** Node order in every list the index renders, so output never depends on the order of facts. */
export function byNodeId(a: NodeRec, b: NodeRec): number {
  return a.id - b.id;
}

/** The nodes of some classes, in node-id order. */
export function nodesOfClasses(classes: Iterable<number>, all: readonly IdentityClass[]): NodeRec[] {
  const out: NodeRec[] = [];
  for (const c of classes) for (const n of all[c]!.nodes) out.push(n);
  return out.sort(byNodeId);
}

/** Each node's own addresses as text, in node order. */
export function nodeTexts(nodes: readonly NodeRec[]): string[] {
  const out: string[] = [];
  for (const n of nodes) {
    if (n.v4Text !== null) out.push(n.v4Text);
    if (n.v6Text !== null) out.push(n.v6Text);
  }
  return out;
}
