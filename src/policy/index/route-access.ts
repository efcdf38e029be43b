// Routes: which prefixes a node serves (advertised and approved), who may reach a prefix, and
// the prefix tests class membership of routers needs.
import { IPSet } from '../../util/ip-set.js';
import { prefixFirst, prefixLast, type IPPrefix } from '../../util/ip.js';
import type { NodeFacts } from '../facts.js';
import type { Bits } from './bits.js';
import { buildNode, type NodeRec } from './records.js';

export interface RouteAccess {
  /** Viewers (classes) with access to the prefix through rules without `via`. */
  readonly regular: Bits;
}

/** The served subnet routes (advertised and approved, exit routes excluded) of some facts. */
export function servedRoutes(facts: NodeFacts): readonly string[] {
  if (facts.approvedRoutes.length === 0 || facts.advertisedRoutes.length === 0) return [];
  return buildNode(0, facts, new Map()).routeTexts;
}

export function prefixHas(p: IPPrefix, n: NodeRec): boolean {
  if (p.addr.family === 4) return n.v4 >= 0 && BigInt(n.v4) >= prefixFirst(p) && BigInt(n.v4) <= prefixLast(p);
  return n.v6 !== null && n.v6 >= prefixFirst(p) && n.v6 <= prefixLast(p);
}

export function prefixSetHas(set: IPSet, n: NodeRec): boolean {
  return (n.v4 >= 0 && set.containsV4(n.v4)) || (n.v6 !== null && set.containsV6(n.v6));
}

export function parsePrefixText(text: string): IPPrefix {
  const set = IPSet.tryParse(text);
  const prefixes = set?.prefixes() ?? [];
  if (prefixes.length !== 1) throw new Error(`${JSON.stringify(text)} is not a prefix`);
  return prefixes[0]!;
}
