// SSH: what the index keeps per compiled SSH rule (sources by user, tagged sources, principals
// built on first use) and how one tailcfg.SSHRule is assembled from it.
import type * as tailcfg from '../../tailcfg/index.js';
import type { CompiledSshRule } from '../compile.js';
import type { Bits } from './bits.js';
import type { NodeRec } from './records.js';
import type { Resolved } from './selections.js';

export interface SshRuleInfo {
  readonly rule: CompiledSshRule;
  readonly src: Resolved;
  /** Whether nodes inside the source's literal prefixes are sources too. */
  readonly literalSources: boolean;
  /** Source node ids. */
  readonly srcSet: Set<number>;
  readonly dstIdentity: Bits;
  /** Untagged sources by user id, each list in node-id order. */
  readonly userNodes: Map<number, NodeRec[]>;
  /** Principals of each user's source nodes, built on first use. */
  readonly byUser: Map<number, tailcfg.SSHPrincipal[]>;
  /** Users with sources, ascending. */
  readonly userIds: number[];
  /** Tagged sources in node-id order. */
  readonly taggedNodes: NodeRec[];
  /** Their principals (one copy per tag), built on first use. */
  tagged: tailcfg.SSHPrincipal[] | null;
  readonly baseUsers: Readonly<Record<string, string>>;
  readonly localpartDomains: readonly string[];
  readonly localparts: Map<number, string>;
  readonly hasLocalpart: boolean;
  readonly action: tailcfg.SSHAction;
  readonly acceptEnv: readonly string[] | null;
  /** Every source's principals in one list (users in id order, then tagged), built on first use. */
  allPrincipals: tailcfg.SSHPrincipal[] | null;
}

/** What a source node puts in an SSH rule's principals; null when nothing. */
export function sshContribution(n: NodeRec): string | null {
  if (n.tagged) return `t${n.tags.length}|${n.v4Text}|${n.v6Text}`;
  return n.user === null ? null : `u${n.user.id}|${n.v4Text}|${n.v6Text}`;
}

export function contributionUser(contribution: string): number | null {
  return contribution.startsWith('u') ? Number(contribution.slice(1, contribution.indexOf('|'))) : null;
}

export function sshRule(principals: tailcfg.SSHPrincipal[], users: Readonly<Record<string, string>>, info: SshRuleInfo): tailcfg.SSHRule {
  const rule: tailcfg.SSHRule = { principals: [...principals], sshUsers: { ...users }, action: { ...info.action } };
  if (info.acceptEnv !== null) rule.acceptEnv = [...info.acceptEnv];
  return rule;
}
