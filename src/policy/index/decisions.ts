// Decisions the control plane and the API ask of a policy about a node that may not be in the
// index yet: may a requester apply these tags (tagOwners), which advertised routes do
// autoApprovers approve. They need only the compiled policy and the users, not the bound state.
import { formatPrefix, parseIP, prefixFirst, prefixLast } from '../../util/ip.js';
import type { CompiledPolicy, Selection } from '../compile.js';
import type { NodeFacts } from '../facts.js';
import { isUserAtom, userAtomMatches, type UserRec } from './records.js';
import { parsePrefixText } from './route-access.js';
import type { TagDecision, TagOwnerContext } from './selections.js';

/** Whether the requester may apply `requestedTags` (tagOwners, tags owned by tags). */
export function tagsAllowed(compiled: CompiledPolicy, users: ReadonlyMap<number, UserRec>, owner: TagOwnerContext, requestedTags: readonly string[]): TagDecision {
  const denied: { tag: string; reason: string }[] = [];
  const user = 'userId' in owner ? users.get(owner.userId) : undefined;
  for (const tag of requestedTags) {
    const owners = compiled.tagOwners.get(tag);
    if (owners === undefined) {
      denied.push({ tag, reason: `tag ${JSON.stringify(tag)} is not defined in tagOwners` });
      continue;
    }
    let ok = false;
    for (const part of owners.parts) {
      if (part.atom === null) continue;
      const spec = compiled.atoms[part.atom]!.spec;
      if ('tags' in owner && spec.kind === 'tag' && owner.tags.includes(spec.tag)) ok = true;
      if (user !== undefined && isUserAtom(spec) && userAtomMatches(spec, user)) ok = true;
    }
    if (!ok) denied.push({ tag, reason: `not an owner of ${tag} in tagOwners` });
  }
  return { allowed: denied.length === 0, denied };
}

/**
 * The advertised routes autoApprovers approve for a node: subnet routes through the routes
 * map (an approver of a covering prefix approves), exit routes only through exitNode.
 */
export function autoApprovedRoutes(compiled: CompiledPolicy, users: ReadonlyMap<number, UserRec>, node: Pick<NodeFacts, 'userId' | 'tags' | 'ipv4' | 'ipv6'>, advertisedRoutes: readonly string[]): string[] {
  const matches = (sel: Selection): boolean => factsMatch(compiled, users, node, sel);
  const out: string[] = [];
  for (const text of advertisedRoutes) {
    const prefix = parsePrefixText(text);
    if (prefix.bits === 0) {
      if (matches(compiled.exitApprovers)) out.push(formatPrefix(prefix));
      continue;
    }
    const ok = compiled.routeApprovers.some(
      (a) => a.prefix.addr.family === prefix.addr.family && a.prefix.bits <= prefix.bits && prefixFirst(a.prefix) <= prefixFirst(prefix) && prefixLast(prefix) <= prefixLast(a.prefix) && matches(a.approvers),
    );
    if (ok) out.push(formatPrefix(prefix));
  }
  return out;
}

/** Whether a node described by facts (not necessarily in the index) matches a selection. */
export function factsMatch(compiled: CompiledPolicy, users: ReadonlyMap<number, UserRec>, node: Pick<NodeFacts, 'userId' | 'tags' | 'ipv4' | 'ipv6'>, sel: Selection): boolean {
  if (sel.wildcard) return true;
  const tagged = node.tags.length > 0;
  const user = !tagged && node.userId !== null ? users.get(node.userId) : undefined;
  for (const part of sel.parts) {
    if (part.atom === null) continue;
    const spec = compiled.atoms[part.atom]!.spec;
    if (spec.kind === 'tag' && node.tags.includes(spec.tag)) return true;
    if (spec.kind === 'tagged' && tagged) return true;
    if (user !== undefined && isUserAtom(spec) && userAtomMatches(spec, user)) return true;
    if (spec.kind === 'literal') {
      const v4 = node.ipv4 ? parseIP(node.ipv4) : null;
      const v6 = node.ipv6 ? parseIP(node.ipv6) : null;
      if ((v4 !== null && spec.set.contains(v4)) || (v6 !== null && spec.set.contains(v6))) return true;
    }
  }
  return false;
}
