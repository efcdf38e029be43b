// Packet-filter templates: a class's (or a user's autogroup:self) filter with the receiving
// node's own addresses left open, their signatures, and their instantiation for one node in
// either wire form (addresses, or `cap:` sources for capver 109+).
import type * as tailcfg from '../../tailcfg/index.js';
import type { PortRange } from '../alias.js';
import { COMPANION_CAPS } from '../compile.js';
import type { NodeRec } from './records.js';
import { SrcList, type SrcRef } from './src-list.js';

/** The node's own address (DstPorts `IP`) or CapGrant prefixes, filled in per node. */
export const SELF = null;

export interface DstEntry {
  /** null = each of the receiving node's own addresses. */
  readonly ip: string | null;
  readonly ports: PortRange;
}

export interface CapEntry {
  /** null = the receiving node's own /32 and /128. */
  readonly dsts: readonly string[] | null;
  readonly capMap: Readonly<Record<string, unknown[] | null>>;
}

/** A rule of a class's (or a user's autogroup:self) filter, before the node's own addresses go in. */
export type TemplateRule =
  | { readonly kind: 'ports'; readonly order: number; readonly src: SrcRef; readonly proto: readonly number[] | null; readonly entries: readonly DstEntry[] }
  | { readonly kind: 'cap'; readonly order: number; readonly src: SrcRef; readonly grants: readonly CapEntry[] };

/** A node standing in for every member of a class when templates are rendered for comparison. */
export const STAND_IN = { v4Text: '\u0000v4', v6Text: '\u0000v6' } as NodeRec;

/** Where each ports rule of a template lands among merged rules (see instantiate). */
export function placement(rules: readonly TemplateRule[], globalFirst: ReadonlyMap<string, number>): string {
  const placed: [number, number][] = [];
  const seen = new Set<string>();
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (r.kind === 'cap') {
      placed.push([r.order, i]);
      continue;
    }
    const key = mergeKey(r.src.key, r.proto);
    if (seen.has(key)) continue;
    seen.add(key);
    const first = globalFirst.get(key);
    placed.push([first !== undefined && first < r.order ? first : r.order, i]);
  }
  placed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return placed.map((p) => p[1]).join(',');
}

/** A template's shape: everything but the contents of its source lists, which it names by uid. */
export function templateSignature(rules: readonly TemplateRule[]): string {
  return JSON.stringify(
    rules.map((r) =>
      r.kind === 'ports'
        ? [r.order, r.src instanceof SrcList ? r.src.uid : r.src.strings, r.proto, r.entries.map((e) => [e.ip, e.ports.first, e.ports.last])]
        : [r.order, r.src instanceof SrcList ? r.src.uid : r.src.strings, r.grants],
    ),
  );
}

/** The merge key of a ports rule: same sources and protocols merge. */
export function mergeKey(srcKey: string, proto: readonly number[] | null): string {
  return `${srcKey}|${proto === null ? '' : proto.join(',')}`;
}

/**
 * Turns a node's template rules (class rules plus its own autogroup:self rules, in policy
 * order) into FilterRules. Rules with the same sources and protocols merge into one, placed
 * where the first of them stands in the tailnet-wide rule list (`globalFirst`), as the service
 * merges before it narrows rules to each node.
 */
/** Filter forms: the SaaS form (default) or the wire form for nodes that serve no routes. */
export interface FilterFormOptions {
  readonly selfAsWildcard?: boolean;
  /**
   * Name listed nodes by one `cap:` entry per source selection instead of their addresses
   * (clients from capability version 109; see sourceCapsOf). autogroup:self sources stay
   * addresses: they change only with the user's own nodes, whose filters change anyway.
   */
  readonly sourceCaps?: boolean;
}

export function hasCompanionCaps(capMap: Readonly<Record<string, unknown>>): boolean {
  return COMPANION_CAPS.some((c) => Object.prototype.hasOwnProperty.call(capMap, c.cap));
}

export function srcStrings(src: SrcRef, sourceCaps: boolean): string[] {
  return (sourceCaps && src instanceof SrcList ? src.capStrings : src.strings) as string[];
}

export function servesNothing(node: NodeRec): boolean {
  return node.routeTexts.length === 0 && node.exitRoutes.length === 0;
}

export function instantiate(rules: readonly TemplateRule[], node: NodeRec, globalFirst: ReadonlyMap<string, number>, selfAsWildcard = false, sourceCaps = false): tailcfg.FilterRule[] {
  const placed: Array<{ position: number; seq: number; rule: tailcfg.FilterRule }> = [];
  const byKey = new Map<string, tailcfg.FilterRule>();
  const selfIPs: string[] = [];
  if (node.v4Text !== null) selfIPs.push(node.v4Text);
  if (node.v6Text !== null) selfIPs.push(node.v6Text);
  const selfPrefixes: string[] = [];
  if (node.v4Text !== null) selfPrefixes.push(`${node.v4Text}/32`);
  if (node.v6Text !== null) selfPrefixes.push(`${node.v6Text}/128`);
  let reordered = false;
  for (const rule of rules) {
    if (rule.kind === 'cap') {
      placed.push({
        position: rule.order,
        seq: placed.length,
        rule: {
          SrcIPs: srcStrings(rule.src, sourceCaps),
          CapGrant: rule.grants.map((g) => ({ Dsts: g.dsts === SELF ? [...selfPrefixes] : [...g.dsts], CapMap: g.capMap as tailcfg.PeerCapMap })),
        },
      });
      continue;
    }
    const dstPorts: tailcfg.NetPortRange[] = [];
    for (const e of rule.entries) {
      if (e.ip === SELF && selfAsWildcard) dstPorts.push({ IP: '*', Ports: { First: e.ports.first, Last: e.ports.last } });
      else if (e.ip === SELF) for (const ip of selfIPs) dstPorts.push({ IP: ip, Ports: { First: e.ports.first, Last: e.ports.last } });
      else dstPorts.push({ IP: e.ip, Ports: { First: e.ports.first, Last: e.ports.last } });
    }
    // The cap: form merges only rules of one selection and keeps template order: its output
    // must not depend on which other lists happen to hold the same addresses right now.
    const key = sourceCaps ? mergeKey(rule.src instanceof SrcList ? `#${rule.src.uid}` : rule.src.key, rule.proto) : mergeKey(rule.src.key, rule.proto);
    const existing = byKey.get(key);
    if (existing !== undefined) {
      existing.DstPorts!.push(...dstPorts);
      continue;
    }
    const fr: tailcfg.FilterRule = { SrcIPs: srcStrings(rule.src, sourceCaps), DstPorts: dstPorts };
    if (rule.proto !== null) fr.IPProto = [...rule.proto];
    byKey.set(key, fr);
    const first = sourceCaps ? undefined : globalFirst.get(key);
    const position = first !== undefined && first < rule.order ? first : rule.order;
    if (position !== rule.order) reordered = true;
    placed.push({ position, seq: placed.length, rule: fr });
  }
  if (reordered) placed.sort((a, b) => a.position - b.position || a.seq - b.seq);
  return placed.map((p) => p.rule);
}

/**
 * Whether two filters are equal. Source lists are compared by reference first: a list an
 * index took over from the one it replaces keeps its strings array, so most compare in O(1).
 */
export function sameFilterRules(a: readonly tailcfg.FilterRule[], b: readonly tailcfg.FilterRule[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.SrcIPs !== y.SrcIPs && (x.SrcIPs.length !== y.SrcIPs.length || x.SrcIPs.some((s, k) => s !== y.SrcIPs[k]))) return false;
    if (JSON.stringify({ ...x, SrcIPs: null }) !== JSON.stringify({ ...y, SrcIPs: null })) return false;
  }
  return true;
}

/** Reversed companion rules (drive-sharer, relay-target) go to the grant's sources. */
export function companionRules(capMap: Readonly<Record<string, unknown[]>>, src: SrcRef, order: number, out: TemplateRule[]): void {
  let sub = 1;
  for (const c of COMPANION_CAPS) {
    if (Object.prototype.hasOwnProperty.call(capMap, c.cap)) {
      out.push({ kind: 'cap', order: order + sub++, src, grants: [{ dsts: SELF, capMap: { [c.companion]: null } }] });
    }
  }
}
