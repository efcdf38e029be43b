// Rebuild and diff by class: the delta between an index and one built from scratch over the
// same tailnet (after a policy or settings change, or an update the incremental path does not
// handle). Nodes are grouped into cells by (class before, class after); each question
// (visibility, views, filters, SSH, self) is answered once per cell or pair of cells and spread
// over the nodes only where the answer changed. Nodes that changed themselves are compared one
// by one.
//
// It reads each index through DiffSide: its node and user records, visibility rows, class
// attributes and filters rendered for a stand-in node, plus its per-node outputs.
import type * as tailcfg from '../../tailcfg/index.js';
import type { CompiledPolicy } from '../compile.js';
import { Bits } from './bits.js';
import { type PolicyDelta, newDeltaParts } from './delta.js';
import { push, type IndexOutputs } from './delta-collection.js';
import { sameFilterRules } from './filter-template.js';
import type { NodeRec, UserRec } from './records.js';

/** What the class diff reads of one index, beyond its per-node outputs. */
export interface DiffSide extends IndexOutputs {
  readonly compiled: CompiledPolicy;
  readonly users: ReadonlyMap<number, UserRec>;
  readonly displayName: string;
  visibilityRow(classId: number): Bits | null;
  classAttrs(classId: number): readonly string[] | undefined;
  /** The class's filter template rendered for a stand-in node, as JSON. */
  standInFilter(classId: number): tailcfg.FilterRule[];
  hasSelfItems(): boolean;
  sshRole(node: NodeRec): string;
  sees(a: number, b: number): boolean;
}

/**
 * The delta from this index to `next` (same tailnet, built from scratch). Nodes in
 * `changed` (added, removed or with new facts) are compared one by one; the others by cell.
 * `usersChanged`: user records differ, so self views are compared per node.
 */
export function diffByClass(old: DiffSide, next: DiffSide, changed: ReadonlySet<number>, usersChanged: boolean): PolicyDelta {
  const { gained, lost, viewChanged, filterChanged, sshChanged, selfChanged, sourceCapsChanged } = newDeltaParts();
  // Cells: nodes with the same class before and after.
  const cells = new Map<string, { a: number; b: number; nodes: NodeRec[] }>();
  for (const n of old.nodes.values()) {
    if (changed.has(n.id)) continue;
    const b = next.nodes.get(n.id)!.classId;
    const key = `${n.classId}|${b}`;
    let cell = cells.get(key);
    if (cell === undefined) cells.set(key, (cell = { a: n.classId, b, nodes: [] }));
    cell.nodes.push(n);
  }
  const list = [...cells.values()];
  visibilityByCells(old, next, list, (n1, n2) => sameUserEither(old, next, n1, n2), gained, lost);
  // Same-user pairs (in either index): rows or autogroup:self.
  const pairs = new Set<string>();
  for (const index of [old, next]) {
    for (const user of index.users.values()) {
      const nodes = user.nodes.filter((n) => !changed.has(n.id));
      for (let i = 0; i < nodes.length; i++) {
        for (let j = i + 1; j < nodes.length; j++) {
          const [a, b] = nodes[i]!.id < nodes[j]!.id ? [nodes[i]!.id, nodes[j]!.id] : [nodes[j]!.id, nodes[i]!.id];
          const key = `${a},${b}`;
          if (pairs.has(key)) continue;
          pairs.add(key);
          const was = old.sees(a, b);
          const now = next.sees(a, b);
          if (was === now) continue;
          push(now ? gained : lost, a, b);
          push(now ? gained : lost, b, a);
        }
      }
    }
  }
  // Views of peers seen before and after. A peer without routes shows the same view to
  // every viewer of one IPv6-only state; routers and exit nodes are compared per viewer cell.
  const isSpecial = (n: NodeRec): boolean => n.routeTexts.length > 0 || n.exitRoutes.length > 0;
  const special = [...old.nodes.values()].filter((n) => !changed.has(n.id) && (isSpecial(n) || isSpecial(next.nodes.get(n.id)!)));
  const specialIds = new Set(special.map((n) => n.id));
  const v6Before = list.map((x) => old.ipv6Only(x.nodes[0]!));
  const v6After = list.map((x) => next.ipv6Only(next.nodes.get(x.nodes[0]!.id)!));
  const v6Moved = list.filter((_, i) => v6Before[i] !== v6After[i]);
  for (let i = 0; i < list.length; i++) {
    const x = list[i]!;
    const viewerWas = v6Before[i]!;
    const viewerNow = v6After[i]!;
    // Only pairs where one side's IPv6-only state moved can change.
    for (const y of viewerWas === viewerNow ? v6Moved : list) {
      const k = list.indexOf(y);
      const peerWas = v6Before[k]!;
      const peerNow = v6After[k]!;
      if (viewerWas === viewerNow && peerWas === peerNow) continue;
      const v4Shown = (viewer: boolean, peer: boolean): boolean => !viewer && !peer;
      if (v4Shown(viewerWas, peerWas) === v4Shown(viewerNow, peerNow)) continue;
      for (const v of x.nodes) {
        for (const p of y.nodes) {
          if (v === p || p.v4Text === null || specialIds.has(p.id)) continue;
          if (old.sees(v.id, p.id) && next.sees(v.id, p.id)) push(viewChanged, p.id, v.id);
        }
      }
    }
  }
  for (const p of special) {
    const memo = new Map<string, boolean>();
    for (const x of list) {
      for (const v of x.nodes) {
        if (v === p || !old.sees(v.id, p.id) || !next.sees(v.id, p.id)) continue;
        // The view depends on the viewer's class and its own routes (HA secondaries).
        const key = `${x.a}|${x.b}|${v.routeTexts.join(',')}`;
        let changed = memo.get(key);
        if (changed === undefined) memo.set(key, (changed = JSON.stringify(old.peerView(v.id, p.id)) !== JSON.stringify(next.peerView(v.id, p.id))));
        if (changed) push(viewChanged, p.id, v.id);
      }
    }
  }
  // Filters: per cell, the class template rendered for a stand-in node; with autogroup:self
  // rules, per cell and user.
  const selfRules = old.hasSelfItems() || next.hasSelfItems();
  const classBefore = new Map<number, tailcfg.FilterRule[]>();
  const classAfter = new Map<number, tailcfg.FilterRule[]>();
  const rendered = (index: DiffSide, memo: Map<number, tailcfg.FilterRule[]>, c: number): tailcfg.FilterRule[] => {
    let out = memo.get(c);
    if (out === undefined) memo.set(c, (out = index.standInFilter(c)));
    return out;
  };
  for (const x of list) {
    const classSame = sameFilterRules(rendered(old, classBefore, x.a), rendered(next, classAfter, x.b));
    for (const n of x.nodes) {
      if (selfRules && (n.user !== null || next.nodes.get(n.id)!.user !== null)) {
        if (JSON.stringify(old.filterFor(n.id)) !== JSON.stringify(next.filterFor(n.id))) filterChanged.push(n.id);
      } else if (!classSame) filterChanged.push(n.id);
    }
  }
  // SSH: per cell, user and (for localpart rules) the node's own source role.
  const sshMemo = new Map<string, boolean>();
  for (const x of list) {
    for (const n of x.nodes) {
      const after = next.nodes.get(n.id)!;
      const key = `${x.a}|${x.b}|${n.user?.id ?? ''}|${after.user?.id ?? ''}|${old.sshRole(n)}|${next.sshRole(after)}`;
      let changed = sshMemo.get(key);
      if (changed === undefined) sshMemo.set(key, (changed = JSON.stringify(old.sshPolicyFor(n.id)) !== JSON.stringify(next.sshPolicyFor(n.id))));
      if (changed) sshChanged.push(n.id);
    }
  }
  // Self views: per cell when attributes and policy flags agree; else per node.
  for (const x of list) {
    const sameAttrs =
      !usersChanged &&
      old.displayName === next.displayName &&
      JSON.stringify(old.classAttrs(x.a)) === JSON.stringify(next.classAttrs(x.b)) &&
      old.compiled.policy.disableIPv4 === next.compiled.policy.disableIPv4 &&
      old.compiled.policy.randomizeClientPort === next.compiled.policy.randomizeClientPort;
    if (sameAttrs) continue;
    for (const n of x.nodes) if (!specialIds.has(n.id) && JSON.stringify(old.selfView(n.id)) !== JSON.stringify(next.selfView(n.id))) selfChanged.push(n.id);
  }
  // Routers: their PrimaryRoutes may have moved with the election.
  for (const n of special) if (JSON.stringify(old.selfView(n.id)) !== JSON.stringify(next.selfView(n.id))) selfChanged.push(n.id);
  // Changed nodes, one by one.
  const viewMemo = new Map<string, boolean>();
  for (const id of changed) {
    const was = old.nodes.get(id);
    const now = next.nodes.get(id);
    if (now === undefined) {
      if (was !== undefined) for (const p of old.peersOf(id)) if (!changed.has(p)) push(lost, p, id);
      continue;
    }
    const peersAfter = next.peersOf(id);
    if (was === undefined) {
      for (const p of peersAfter) {
        push(gained, id, p);
        if (!changed.has(p)) push(gained, p, id);
      }
      continue;
    }
    const peersBefore = new Set(old.peersOf(id));
    const after = new Set(peersAfter);
    for (const p of peersAfter) {
      if (!peersBefore.has(p)) {
        push(gained, id, p);
        if (!changed.has(p)) push(gained, p, id);
        continue;
      }
      if (!changed.has(p)) {
        const viewer = next.nodes.get(p)!;
        const key = `${id}|${old.nodes.get(p)!.classId}|${viewer.classId}|${viewer.routeTexts.join(',')}`;
        let moved = viewMemo.get(key);
        if (moved === undefined) viewMemo.set(key, (moved = JSON.stringify(old.peerView(p, id)) !== JSON.stringify(next.peerView(p, id))));
        if (moved) push(viewChanged, id, p);
      }
      if (JSON.stringify(old.peerView(id, p)) !== JSON.stringify(next.peerView(id, p))) push(viewChanged, p, id);
    }
    for (const p of peersBefore) {
      if (after.has(p)) continue;
      push(lost, id, p);
      if (!changed.has(p)) push(lost, p, id);
    }
    if (JSON.stringify(old.filterFor(id)) !== JSON.stringify(next.filterFor(id))) filterChanged.push(id);
    if (JSON.stringify(old.sshPolicyFor(id)) !== JSON.stringify(next.sshPolicyFor(id))) sshChanged.push(id);
    if (JSON.stringify(old.selfView(id)) !== JSON.stringify(next.selfView(id))) selfChanged.push(id);
  }
  // Source caps name the selections that list a node: few per node, compared node by node.
  for (const n of next.nodes.values()) {
    if (!old.nodes.has(n.id)) continue;
    if (old.sourceCapsOf(n.id).join(' ') !== next.sourceCapsOf(n.id).join(' ')) sourceCapsChanged.push(n.id);
  }
  return { gained, lost, viewChanged, filterChanged, sshChanged, selfChanged, sourceCapsChanged };
}

/** Nodes with class `a` in the old index and `b` in the new one. */
export interface Cell {
  readonly a: number;
  readonly b: number;
  readonly nodes: readonly NodeRec[];
}

/**
 * Visibility between cells by class rows alone: where a pair of cells' row bit moved, every
 * pair of their nodes (each once, both ways) is gained or lost, except pairs `skip` names
 * (same-user pairs, which autogroup:self also decides).
 */
export function visibilityByCells(old: DiffSide, next: DiffSide, cells: readonly Cell[], skip: (a: NodeRec, b: NodeRec) => boolean, gained: Map<number, number[]>, lost: Map<number, number[]>): void {
  const none = new Bits(0);
  for (let i = 0; i < cells.length; i++) {
    const x = cells[i]!;
    const rowBefore = old.visibilityRow(x.a) ?? none;
    const rowAfter = next.visibilityRow(x.b) ?? none;
    for (let j = i; j < cells.length; j++) {
      const y = cells[j]!;
      const now = rowAfter.has(y.b);
      if (rowBefore.has(y.a) === now) continue;
      const into = now ? gained : lost;
      for (const n1 of x.nodes) {
        for (const n2 of y.nodes) {
          if (n1 === n2 || (i === j && n2.id < n1.id) || skip(n1, n2)) continue;
          push(into, n1.id, n2.id);
          push(into, n2.id, n1.id);
        }
      }
    }
  }
}

/** Whether two nodes have one owner (untagged) in this index or in `next`. */
function sameUserEither(old: DiffSide, next: DiffSide, n1: NodeRec, n2: NodeRec): boolean {
  if (n1.user !== null && n1.user === n2.user) return true;
  const a = next.nodes.get(n1.id)!.user;
  return a !== null && a === next.nodes.get(n2.id)!.user;
}
