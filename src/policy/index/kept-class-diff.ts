// The delta of a policy edit that keeps every node in its identity class (the new index shares
// the old one's class binding: same atoms, same postures, classes refined first if the new
// policy brought atoms, see ClassBinding.extend). Every node then sits in one cell per
// class, users and routes are unchanged, so each question is asked per class or pair of classes
// and spread over nodes only where the answer changed; nothing walks every node per question
// unless that question's inputs changed (autogroup:self filters, SSH rules, source lists).
//
// It answers the same as diffByClass over the same two indexes (the policy edit test checks
// both against the node-by-node oracle) and reads them through the same DiffSide.
import { visibilityByCells, type DiffSide } from './class-diff.js';
import { type PolicyDelta, newDeltaParts } from './delta.js';
import { push } from './delta-collection.js';
import { sameFilterRules } from './filter-template.js';
import type { IdentityClass, NodeRec } from './records.js';

/** What the kept-class diff reads of an index beyond DiffSide. */
export interface KeptClassSide extends DiffSide {
  /** Source lists with a capability name, by name and selection shape: whether each lists a class's nodes. */
  capLists(): ReadonlyMap<string, (cls: IdentityClass) => boolean>;
}

/**
 * The delta from `old` to `next`, which share `classes` (and so nodes, users and routes).
 * `sshSame` is sameSshRules(old.compiled, next.compiled), which the caller has already
 * worked out to decide whether the SSH policies carry over.
 */
export function diffKeptClasses(old: KeptClassSide, next: KeptClassSide, classes: readonly IdentityClass[], sshSame: boolean): PolicyDelta {
  const { gained, lost, viewChanged, filterChanged, sshChanged, selfChanged, sourceCapsChanged } = newDeltaParts();
  const live = classes.filter((c) => c.nodes.length > 0);
  const cells = live.map((c) => ({ a: c.id, b: c.id, nodes: c.nodes }));
  visibilityByCells(old, next, cells, (n1, n2) => n1.user !== null && n1.user === n2.user, gained, lost);
  // Same-user pairs: rows or autogroup:self. Without self rules on either side, only pairs
  // whose class rows moved can change.
  const selfRules = old.hasSelfItems() || next.hasSelfItems();
  for (const user of old.users.values()) {
    const nodes = user.nodes;
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        const a = nodes[i]!;
        const b = nodes[j]!;
        if (!selfRules && (old.visibilityRow(a.classId)?.has(b.classId) ?? false) === (next.visibilityRow(a.classId)?.has(b.classId) ?? false)) continue;
        const now = next.sees(a.id, b.id);
        if (old.sees(a.id, b.id) === now) continue;
        push(now ? gained : lost, a.id, b.id);
        push(now ? gained : lost, b.id, a.id);
      }
    }
  }
  // Views of peers seen before and after. A peer without routes shows one view to every
  // viewer of one IPv6-only state: only pairs where a side's state moved can change.
  const isSpecial = (n: NodeRec): boolean => n.routeTexts.length > 0 || n.exitRoutes.length > 0;
  const v6Before = new Map(live.map((c) => [c.id, old.ipv6Only(c.nodes[0]!)]));
  const v6After = new Map(live.map((c) => [c.id, next.ipv6Only(c.nodes[0]!)]));
  const v6Moved = live.filter((c) => v6Before.get(c.id) !== v6After.get(c.id));
  const v4Shown = (viewer: boolean, peer: boolean): boolean => !viewer && !peer;
  if (v6Moved.length > 0) {
    for (const x of live) {
      const viewerWas = v6Before.get(x.id)!;
      const viewerNow = v6After.get(x.id)!;
      for (const y of viewerWas === viewerNow ? v6Moved : live) {
        if (v4Shown(viewerWas, v6Before.get(y.id)!) === v4Shown(viewerNow, v6After.get(y.id)!)) continue;
        for (const v of x.nodes) {
          for (const p of y.nodes) {
            if (v === p || p.v4Text === null || isSpecial(p)) continue;
            if (old.sees(v.id, p.id) && next.sees(v.id, p.id)) push(viewChanged, p.id, v.id);
          }
        }
      }
    }
  }
  // Routers and exit nodes: per viewer class (and the viewer's own routes, HA secondaries),
  // over the peers that see them now.
  const special: NodeRec[] = [];
  for (const c of live) if (c.routeTexts.length > 0 || c.exit) special.push(...c.nodes.filter(isSpecial));
  for (const p of special) {
    const memo = new Map<string, boolean>();
    for (const vid of next.peersOf(p.id)) {
      if (!old.sees(vid, p.id)) continue;
      const v = next.nodes.get(vid)!;
      const key = `${v.classId}|${v.routeTexts.join(',')}`;
      let moved = memo.get(key);
      if (moved === undefined) memo.set(key, (moved = JSON.stringify(old.peerView(vid, p.id)) !== JSON.stringify(next.peerView(vid, p.id))));
      if (moved) push(viewChanged, p.id, vid);
    }
  }
  // Filters: the class template rendered for a stand-in node; autogroup:self rules add
  // per-user rules, compared node by node for owned nodes.
  for (const x of live) {
    const classSame = sameFilterRules(old.standInFilter(x.id), next.standInFilter(x.id));
    for (const n of x.nodes) {
      if (selfRules && n.user !== null) {
        if (JSON.stringify(old.filterFor(n.id)) !== JSON.stringify(next.filterFor(n.id))) filterChanged.push(n.id);
      } else if (!classSame) filterChanged.push(n.id);
    }
  }
  // SSH: the same rules over the same classes and users give the same policies; otherwise per
  // class, user and (for localpart rules) the node's own source role.
  if (!sshSame) {
    const memo = new Map<string, boolean>();
    for (const x of live) {
      for (const n of x.nodes) {
        const key = `${x.id}|${n.user?.id ?? ''}|${old.sshRole(n)}|${next.sshRole(n)}`;
        let moved = memo.get(key);
        if (moved === undefined) memo.set(key, (moved = JSON.stringify(old.sshPolicyFor(n.id)) !== JSON.stringify(next.sshPolicyFor(n.id))));
        if (moved) sshChanged.push(n.id);
      }
    }
  }
  // Self views: per class when attributes and policy flags agree; routers always (their
  // PrimaryRoutes follow the election).
  const flagsSame =
    old.displayName === next.displayName &&
    old.compiled.policy.disableIPv4 === next.compiled.policy.disableIPv4 &&
    old.compiled.policy.randomizeClientPort === next.compiled.policy.randomizeClientPort;
  for (const x of live) {
    const attrsSame = flagsSame && JSON.stringify(old.classAttrs(x.id)) === JSON.stringify(next.classAttrs(x.id));
    for (const n of x.nodes) {
      if (attrsSame && !isSpecial(n)) continue;
      if (JSON.stringify(old.selfView(n.id)) !== JSON.stringify(next.selfView(n.id))) selfChanged.push(n.id);
    }
  }
  // Source caps: a list's name is its selection's, and one selection (of one shape) lists the
  // same nodes of these classes in both indexes, so a class whose lists agree keeps every
  // node's caps.
  const capsBefore = old.capLists();
  const capsAfter = next.capLists();
  const movedLists = [...[...capsBefore].filter(([key]) => !capsAfter.has(key)), ...[...capsAfter].filter(([key]) => !capsBefore.has(key))].map(([, lists]) => lists);
  for (const x of live) {
    if (!movedLists.some((lists) => lists(x))) continue;
    for (const n of x.nodes) {
      if (old.sourceCapsOf(n.id).join(' ') !== next.sourceCapsOf(n.id).join(' ')) sourceCapsChanged.push(n.id);
    }
  }
  return { gained, lost, viewChanged, filterChanged, sshChanged, selfChanged, sourceCapsChanged };
}
