// SSH: the policy's `ssh` rules bound to this tailnet's nodes (SshRuleInfo, built on first use
// and then kept current as nodes come and go), the SSH rules each node is sent, the check
// period of `check` rules, and which nodes' SSH policies an update touched.
//
// What it reads from the rest of the index is SshHost: the compiled policy, the settings (the
// check URL), the users, the identity classes with their nodes, and selection resolution.
// What it gives back: rulesFor / checkPeriodMs for queries, detach / attach / userChanged for
// updates (which note into Touched), candidates() for the delta and roleOf() for the diff.
import type * as tailcfg from '../../tailcfg/index.js';
import { lowerBound } from '../../util/sorted.js';
import type { CompiledPolicy, Selection } from '../compile.js';
import type { TailnetSettings } from '../facts.js';
import type { Touched, UserChange } from './delta-collection.js';
import { byNodeId, insertById } from './node-lists.js';
import { type IdentityClass, type NodeRec, type UserRec, emailDomain } from './records.js';
import { prefixSetHas } from './route-access.js';
import { selectionShape, type Resolved } from './selections.js';
import { contributionUser, sshContribution, sshRule, type SshRuleInfo } from './ssh-rules.js';

/** `localpart:*@domain` and ssh `user:*@domain` must name a domain of this tailnet. */
export function checkSshDomains(compiled: CompiledPolicy, domains: ReadonlySet<string> | null): void {
  if (domains === null) return;
  const source = compiled.policy.source;
  for (const rule of compiled.policy.ssh ?? []) {
    for (const u of rule.users) {
      const m = /^localpart:\*@(.+)$/.exec(u.text);
      // Domains compare exactly: the service rejects `localpart:*@EXAMPLE.COM`.
      if (m !== null && !domains.has(m[1]!)) {
        throw source.error(
          'invalidSsh',
          `${m[1]} is not associated with this Tailnet and cannot be used in user:*@<domain> expressions`,
          u.at,
          u.path,
        );
      }
    }
    for (const s of rule.src) {
      if (s.alias.kind === 'userDomain' && !domains.has(s.alias.domain)) {
        throw source.error(
          'invalidSelector',
          `[ssh] ${s.alias.domain} is not associated with this Tailnet and cannot be used in user:*@<domain> expressions`,
          s.at,
          s.path,
        );
      }
    }
  }
}

/**
 * Whether two policies have the same SSH rules, apart from where they were written (an edit
 * above them moves that), over selections of the same shape (a group's members may change
 * under the same name). Over the same classes they then give every node the same SSH policy.
 */
export function sameSshRules(a: CompiledPolicy, b: CompiledPolicy): boolean {
  const text = (c: CompiledPolicy): string =>
    JSON.stringify([c.policy.ssh, (c.ssh ?? []).map((r) => [selectionShape(r.src), selectionShape(r.dst)])], (key, value: unknown) => (key === 'at' || key === 'path' ? undefined : value));
  return text(a) === text(b);
}

/** What the SSH part reads from the rest of the index (always the current state). */
export interface SshHost {
  readonly compiled: CompiledPolicy;
  readonly settings: TailnetSettings;
  readonly users: ReadonlyMap<number, UserRec>;
  readonly classes: readonly IdentityClass[];
  nodes(): Iterable<NodeRec>;
  resolve(sel: Selection): Resolved;
}

export class SshPolicies {
  readonly #host: SshHost;
  #infos: SshRuleInfo[] | null = null;

  constructor(host: SshHost) {
    this.#host = host;
  }

  /** Takes over another index's bound rules (after a rebuild). */
  adopt(other: SshPolicies): void {
    this.#infos = other.#infos;
  }

  /**
   * Takes over the bound rules of the index this one replaces, which had the same SSH rules over
   * the same classes (see sameSshRules): their sources and principals are the same, only the
   * compiled rules and resolutions are this index's. The other index must not be updated after.
   */
  carryOver(other: SshPolicies): void {
    const rules = this.#host.compiled.ssh;
    if (other.#infos === null || rules === null) return;
    this.#infos = other.#infos.map((info, i) => {
      const rule = rules[i]!;
      return { ...info, rule, src: this.#host.resolve(rule.src), dstIdentity: this.#host.resolve(rule.dst).identity };
    });
  }

  /** Binds the rules now if the policy has any (an update must see them bound to track sources). */
  bind(): void {
    if (this.#host.compiled.ssh !== null) this.infos();
  }

  /** Takes a node out of every rule it is a source of, noting what it contributed. */
  detach(node: NodeRec, touched: Touched, moving: boolean): void {
    if (this.#infos === null) return;
    for (const info of this.#infos) {
      if (!info.srcSet.has(node.id)) continue;
      // A node that moves may leave the principals as they were (say, the only source
      // moving to another user): such rules are compared whole.
      if (moving && info.rule.dst.parts.length > 0 && !info.hasLocalpart && !touched.principals.has(info)) touched.principals.set(info, this.#principalSequence(info));
      touched.noteSsh(info, node.id, sshContribution(node), true);
      this.#remove(info, node);
    }
  }

  /** Puts a node into every rule it is a source of: the inverse of detach. */
  attach(node: NodeRec, touched: Touched): void {
    if (this.#infos === null) return;
    for (const info of this.#infos) {
      if (!this.#isSource(info, node)) continue;
      touched.noteSsh(info, node.id, sshContribution(node), false);
      this.#add(info, node);
    }
  }

  /** A user's email may have moved its localpart mappings; notes the rules where it did. */
  userChanged(change: UserChange, touched: Touched): void {
    if (this.#infos === null) return;
    for (const info of this.#infos) {
      if (!info.hasLocalpart) continue;
      const changed = this.#setLocalpart(info, change.facts ?? { id: change.id, email: '' });
      if (changed) touched.localparts.push({ info, userId: change.id });
    }
  }

  /**
   * What of a node, beyond its class and user, its SSH rules depend on: its own membership in
   * the sources of localpart rules (and, tagged, its own addresses there).
   */
  roleOf(n: NodeRec): string {
    if (this.#infos === null) return '';
    let out = '';
    for (const info of this.#infos) if (info.hasLocalpart) out += info.srcSet.has(n.id) ? (n.tagged ? `t${n.id},` : 's,') : '-,';
    return out;
  }

  /** Every source's principals in rule order (what a destination of a non-localpart rule gets). */
  #principalSequence(info: SshRuleInfo): string {
    const all: tailcfg.SSHPrincipal[] = [];
    for (const uid of info.userIds) all.push(...this.#userPrincipals(info, uid)!);
    all.push(...this.#taggedPrincipals(info));
    return JSON.stringify(all);
  }

  /** Nodes whose SSH policy changed because some rule's sources (or their localparts) did. */
  candidates(touched: Touched, out: Set<number>): void {
    const users = new Map<SshRuleInfo, Set<number>>();
    const dstRules = new Set<SshRuleInfo>();
    for (const [info, byNode] of touched.ssh) {
      let joinedOrLeft = false;
      for (const [, c] of byNode) {
        if (c.before === c.after) continue;
        if (c.before === null || c.after === null) joinedOrLeft = true;
        if (info.rule.dst.parts.length > 0) dstRules.add(info);
        for (const contribution of [c.before, c.after]) {
          const uid = contribution === null ? null : contributionUser(contribution);
          if (uid === null) continue;
          let set = users.get(info);
          if (set === undefined) users.set(info, (set = new Set()));
          set.add(uid);
        }
      }
      const before = touched.principals.get(info);
      if (!joinedOrLeft && before !== undefined && dstRules.has(info) && before === this.#principalSequence(info)) dstRules.delete(info);
    }
    for (const { info, userId } of touched.localparts) {
      if (!info.userNodes.has(userId)) continue;
      if (info.rule.dst.parts.length > 0) dstRules.add(info);
      let set = users.get(info);
      if (set === undefined) users.set(info, (set = new Set()));
      set.add(userId);
    }
    for (const info of dstRules) for (const c of info.dstIdentity) for (const n of this.#host.classes[c]!.nodes) out.add(n.id);
    for (const [info, uids] of users) {
      for (const uid of uids) {
        const user = this.#host.users.get(uid);
        if (user === undefined) continue;
        for (const n of user.nodes) {
          if (info.rule.selfDst) out.add(n.id);
          else if (info.hasLocalpart && info.srcSet.has(n.id) && !info.dstIdentity.has(n.classId)) out.add(n.id);
        }
      }
    }
  }

  /**
   * The check period of the `check` rules that let `src` log in to `dst` as `localUser` (the
   * shortest when several do): null when those rules name none (the caller's default),
   * undefined when no check rule lets it (the policy changed since the client asked).
   */
  checkPeriodMs(src: NodeRec, dst: NodeRec, localUser: string): number | null | undefined {
    if (this.#host.compiled.ssh === null) return undefined;
    let found = false;
    let shortest: number | null = null;
    for (const info of this.infos()) {
      if (info.rule.rule.action !== 'check' || !info.srcSet.has(src.id)) continue;
      const toSelf = info.rule.selfDst && !src.tagged && !dst.tagged && src.user !== null && src.user.id === dst.user?.id;
      if (!toSelf && !(info.rule.dst.parts.length > 0 && info.dstIdentity.has(dst.classId))) continue;
      const mapped = info.baseUsers[localUser] ?? (info.baseUsers['*'] === '=' && localUser !== 'root' ? localUser : undefined);
      const viaLocalpart = src.user !== null && info.localparts.get(src.user.id) === localUser;
      if ((mapped === undefined || mapped === '') && !viaLocalpart) continue;
      const period = info.rule.rule.checkPeriodMs;
      if (period !== null) shortest = shortest === null ? period : Math.min(shortest, period);
      found = true;
    }
    return found ? shortest : undefined;
  }

  rulesFor(node: NodeRec): tailcfg.SSHRule[] {
    if (this.#host.compiled.ssh === null) return [];
    const infos = this.infos();
    const out: tailcfg.SSHRule[] = [];
    for (const info of infos) {
      if (info.srcSet.size === 0) continue;
      const append = (principals: tailcfg.SSHPrincipal[], userId: number | null): void => {
        out.push(sshRule(principals, info.baseUsers, info));
        if (userId !== null) {
          const lp = info.localparts.get(userId);
          if (lp !== undefined) out.push(sshRule(principals, { [lp]: lp }, info));
        }
      };
      if (info.rule.selfDst && node.user !== null) {
        const principals = this.#userPrincipals(info, node.user.id);
        if (principals !== undefined && principals.length > 0) append(principals, node.user.id);
      }
      if (info.rule.dst.parts.length === 0) continue;
      if (info.dstIdentity.has(node.classId)) {
        if (info.hasLocalpart) {
          for (const uid of info.userIds) append(this.#userPrincipals(info, uid)!, uid);
          const tagged = this.#taggedPrincipals(info);
          if (tagged.length > 0) append([...tagged], null);
        } else {
          if (info.allPrincipals === null) {
            const all: tailcfg.SSHPrincipal[] = [];
            for (const uid of info.userIds) all.push(...this.#userPrincipals(info, uid)!);
            all.push(...this.#taggedPrincipals(info));
            info.allPrincipals = all;
          }
          if (info.allPrincipals.length > 0) append(info.allPrincipals, null);
        }
      } else if (info.hasLocalpart && info.srcSet.has(node.id)) {
        // The service also gives a source that is not a destination the rules for its own
        // identity when localpart mappings are involved (seen in every localpart capture).
        if (node.tagged) append(this.#principals([node], 1), null);
        else if (node.user !== null) {
          const principals = this.#userPrincipals(info, node.user.id);
          if (principals !== undefined) append(principals, node.user.id);
        }
      }
    }
    // First match wins on the client; the service puts check rules before accept rules.
    const checks = out.filter((r) => r.action.holdAndDelegate !== undefined);
    const accepts = out.filter((r) => r.action.holdAndDelegate === undefined);
    return [...checks, ...accepts];
  }

  #userPrincipals(info: SshRuleInfo, userId: number): tailcfg.SSHPrincipal[] | undefined {
    let principals = info.byUser.get(userId);
    if (principals === undefined) {
      const nodes = info.userNodes.get(userId);
      if (nodes === undefined) return undefined;
      principals = this.#principals(nodes, 1);
      info.byUser.set(userId, principals);
    }
    return principals;
  }

  #taggedPrincipals(info: SshRuleInfo): tailcfg.SSHPrincipal[] {
    info.tagged ??= this.#principals(info.taggedNodes, (n: NodeRec) => n.tags.length);
    return info.tagged;
  }

  #principals(nodes: readonly NodeRec[], copies: number | ((n: NodeRec) => number)): tailcfg.SSHPrincipal[] {
    const out: tailcfg.SSHPrincipal[] = [];
    for (const n of nodes) {
      const k = typeof copies === 'number' ? copies : copies(n);
      for (let i = 0; i < k; i++) {
        if (n.v4Text !== null) out.push({ nodeIP: n.v4Text });
        if (n.v6Text !== null) out.push({ nodeIP: n.v6Text });
      }
    }
    return out;
  }

  /** Whether a node is a source of an SSH rule: by identity, or by address for literal sources. */
  #isSource(info: SshRuleInfo, n: NodeRec): boolean {
    return info.src.identity.has(n.classId) || (info.literalSources && prefixSetHas(info.rule.src.literal, n));
  }

  infos(): SshRuleInfo[] {
    if (this.#infos !== null) return this.#infos;
    const infos: SshRuleInfo[] = [];
    const base = this.#host.settings.sshCheckBaseUrl ?? 'https://unused';
    for (const rule of this.#host.compiled.ssh ?? []) {
      const users = rule.rule.users.map((u) => u.text);
      const baseUsers: Record<string, string> = {};
      if (users.includes('autogroup:nonroot')) baseUsers['*'] = '=';
      baseUsers['root'] = users.includes('root') ? 'root' : '';
      const localpartDomains: string[] = [];
      for (const u of users) {
        const m = /^localpart:\*@(.+)$/.exec(u);
        if (m !== null) localpartDomains.push(m[1]!.toLowerCase());
        else if (u !== 'root' && u !== 'autogroup:nonroot') baseUsers[u] = u;
      }
      const action: tailcfg.SSHAction =
        rule.rule.action === 'accept'
          ? { accept: true, allowAgentForwarding: true, allowLocalPortForwarding: true, allowRemotePortForwarding: true }
          : { holdAndDelegate: `${base}/machine/ssh/action/$SRC_NODE_ID/to/$DST_NODE_ID?local_user=$LOCAL_USER` };
      const info: SshRuleInfo = {
        rule,
        src: this.#host.resolve(rule.src),
        literalSources: !rule.src.wildcard && !rule.src.literal.isEmpty() && rule.src.postures.length === 0,
        srcSet: new Set(),
        dstIdentity: this.#host.resolve(rule.dst).identity,
        userNodes: new Map(),
        byUser: new Map(),
        userIds: [],
        taggedNodes: [],
        tagged: null,
        baseUsers,
        localpartDomains,
        localparts: new Map(),
        hasLocalpart: localpartDomains.length > 0,
        action,
        acceptEnv: rule.rule.acceptEnv,
        allPrincipals: null,
      };
      for (const user of this.#host.users.values()) this.#setLocalpart(info, user);
      const srcNodes: NodeRec[] = [];
      for (const c of info.src.identity) srcNodes.push(...this.#host.classes[c]!.nodes);
      if (info.literalSources) for (const n of this.#host.nodes()) if (!info.src.identity.has(n.classId) && prefixSetHas(rule.src.literal, n)) srcNodes.push(n);
      srcNodes.sort(byNodeId);
      for (const n of srcNodes) {
        info.srcSet.add(n.id);
        if (n.tagged) info.taggedNodes.push(n);
        else if (n.user !== null) {
          const list = info.userNodes.get(n.user.id);
          if (list === undefined) info.userNodes.set(n.user.id, [n]);
          else list.push(n);
        }
      }
      info.userIds.push(...[...info.userNodes.keys()].sort((a, b) => a - b));
      infos.push(info);
    }
    this.#infos = infos;
    return infos;
  }

  /** Records the user's localpart for a rule's localpart:*@domain users; returns whether it changed. */
  #setLocalpart(info: SshRuleInfo, user: UserRec | { id: number; email: string }): boolean {
    const before = info.localparts.get(user.id);
    let after: string | undefined;
    if (user.email !== '' && info.localpartDomains.includes(emailDomain(user.email))) after = user.email.slice(0, user.email.lastIndexOf('@'));
    if (after === undefined) info.localparts.delete(user.id);
    else info.localparts.set(user.id, after);
    return before !== after;
  }

  /** Adds a source node to an SSH rule (lists stay in node-id order; caches drop). */
  #add(info: SshRuleInfo, n: NodeRec): void {
    info.srcSet.add(n.id);
    info.allPrincipals = null;
    if (n.tagged) {
      insertById(info.taggedNodes, n);
      info.tagged = null;
    } else if (n.user !== null) {
      const uid = n.user.id;
      const list = info.userNodes.get(uid);
      if (list === undefined) {
        info.userNodes.set(uid, [n]);
        info.userIds.splice(lowerBound(info.userIds, uid), 0, uid);
      } else insertById(list, n);
      info.byUser.delete(uid);
    }
  }

  #remove(info: SshRuleInfo, n: NodeRec): void {
    if (!info.srcSet.delete(n.id)) return;
    info.allPrincipals = null;
    if (n.tagged) {
      info.taggedNodes.splice(info.taggedNodes.indexOf(n), 1);
      info.tagged = null;
    } else if (n.user !== null) {
      const uid = n.user.id;
      const list = info.userNodes.get(uid)!;
      list.splice(list.indexOf(n), 1);
      if (list.length === 0) {
        info.userNodes.delete(uid);
        info.userIds.splice(lowerBound(info.userIds, uid), 1);
      }
      info.byUser.delete(uid);
    }
  }
}
