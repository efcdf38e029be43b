// The policy bound to a tailnet: identity classes, selector resolutions, the class x class
// visibility relation, per-class packet-filter templates, SSH policies, peer and self views,
// and the decisions the control and API layers ask for.
//
// Build cost is proportional to nodes + classes x rules (+ classes^2/32 for visibility); a
// query touches only the asked-for node's class, its user and its peers.
import type * as tailcfg from '../../tailcfg/index.js';
import { type IPPrefix, formatIP, formatPrefix, parseIP, prefixFirst, prefixLast } from '../../util/ip.js';
import { IPSet, IPSetBuilder } from '../../util/ip-set.js';
import type { PortRange } from '../alias.js';
import {
  COMPANION_CAPS,
  renderDstLiteral,
  type Atom,
  type CompiledPolicy,
  type CompiledSshRule,
  type RuleItem,
  type Selection,
  type SelectionPart,
} from '../compile.js';
import { PolicyError } from '../errors.js';
import type { NodeFacts, TailnetFacts, TailnetSettings, UserFacts, UserRole } from '../facts.js';
import { diffIndexes, EMPTY_POLICY_DELTA, type PolicyDelta } from './diff.js';
import { PrimaryRouteTable } from '../primary-routes.js';
import { meetsPosture } from '../posture.js';
import { runPolicyTests, type TestReport } from '../tests.js';
import { INTERNET, INTERNET_DST_STRINGS, TAILSCALE_SPACE } from '../tailscale-ranges.js';
import { Bits } from './bits.js';
import {
  type IdentityClass,
  type NodeRec,
  type UserRec,
  buildNode,
  buildUsers,
  emailDomain,
  isUserAtom,
  literalAtomMatches,
  nodeAddressSet,
  userAtomMatches,
} from './records.js';

/** A peer as one viewer sees it; the rest of tailcfg.Node is the mapper's. */
export interface PeerView {
  readonly AllowedIPs: string[];
  readonly PrimaryRoutes: string[];
  readonly Tags: string[];
  /** null when the peer carries no peer-visible capabilities. */
  readonly CapMap: tailcfg.NodeCapMap | null;
}

export interface SelfView {
  readonly Addresses: string[];
  readonly AllowedIPs: string[];
  readonly PrimaryRoutes: string[];
  readonly Tags: string[];
  readonly CapMap: tailcfg.NodeCapMap;
}

/** Who asks to apply tags: a user (interactive login, auth key owner) or a tagged node's tags. */
export type TagOwnerContext = { readonly userId: number } | { readonly tags: readonly string[] };

export interface TagDecision {
  readonly allowed: boolean;
  readonly denied: readonly { readonly tag: string; readonly reason: string }[];
}

/** The node's own address (DstPorts `IP`) or CapGrant prefixes, filled in per node. */
const SELF = null;

interface DstEntry {
  /** null = each of the receiving node's own addresses. */
  readonly ip: string | null;
  readonly ports: PortRange;
}

interface CapEntry {
  /** null = the receiving node's own /32 and /128. */
  readonly dsts: readonly string[] | null;
  readonly capMap: Readonly<Record<string, unknown[] | null>>;
}

type TemplateRule =
  | { readonly kind: 'ports'; readonly order: number; readonly srcId: number; readonly srcIPs: readonly string[]; readonly proto: readonly number[] | null; readonly entries: readonly DstEntry[] }
  | { readonly kind: 'cap'; readonly order: number; readonly srcIPs: readonly string[]; readonly grants: readonly CapEntry[] };

/**
 * A selection bound to this tailnet. The address set is built only when something asks for it
 * (routers, tests, explain): a tailnet without subnet routers never pays for it.
 */
class Resolved {
  readonly sel: Selection;
  /** Classes whose identity matches (atoms; every class for `*`). */
  readonly identity: Bits;
  /** Classes in the set as packet endpoints: identity plus routers whose routes overlap it. */
  members: Bits;
  readonly #addresses: () => IPSet;
  #ipSet: IPSet | null = null;

  constructor(sel: Selection, identity: Bits, addresses: () => IPSet) {
    this.sel = sel;
    this.identity = identity;
    this.members = identity;
    this.#addresses = addresses;
  }

  /** Everything the selection covers as an address set. */
  get ipSet(): IPSet {
    if (this.#ipSet === null) this.#ipSet = this.#addresses();
    return this.#ipSet;
  }
}

interface ItemInfo {
  readonly item: RuleItem;
  readonly src: Resolved;
  readonly srcIPs: readonly string[];
  readonly srcId: number;
}

interface SshRuleInfo {
  readonly rule: CompiledSshRule;
  readonly srcNodes: readonly NodeRec[];
  readonly srcSet: Set<number>;
  readonly dstIdentity: Bits;
  readonly byUser: ReadonlyMap<number, tailcfg.SSHPrincipal[]>;
  readonly userIds: readonly number[];
  readonly tagged: readonly tailcfg.SSHPrincipal[];
  readonly baseUsers: Readonly<Record<string, string>>;
  readonly localparts: ReadonlyMap<number, string>;
  readonly hasLocalpart: boolean;
  readonly action: tailcfg.SSHAction;
  readonly acceptEnv: readonly string[] | null;
  /** Every source's principals in one list (users in id order, then tagged), built on first use. */
  allPrincipals: tailcfg.SSHPrincipal[] | null;
}

interface RouteAccess {
  /** Viewers (classes) with access to the prefix through rules without `via`. */
  readonly regular: Bits;
}

export interface PolicyIndexOptions {
  /** Reuse a primary-route table the server keeps (failover state); built from facts otherwise. */
  readonly primaryRoutes?: PrimaryRouteTable;
}

const BASE_SELF_CAPS: readonly string[] = [
  'https://tailscale.com/cap/file-sharing',
  'https://tailscale.com/cap/ssh',
  'https://tailscale.com/cap/tailnet-lock',
  'probe-udp-lifetime',
  'ssh-behavior-v1',
  'ssh-env-vars',
  'store-appc-routes',
];
const CAP_IS_ADMIN = 'https://tailscale.com/cap/is-admin';
const CAP_IS_OWNER = 'https://tailscale.com/cap/is-owner';
const FUNNEL_EXTRA_CAPS: readonly string[] = ['https://tailscale.com/cap/funnel-ports?ports=443,8443,10000', 'https://tailscale.com/cap/warn-funnel-no-https'];
const ATTR_DISABLE_IPV4 = 'disable-ipv4';
const PEER_CAP_SUGGEST_EXIT = 'suggest-exit-node';

export class PolicyIndex {
  #compiledPolicy: CompiledPolicy;
  #settings: TailnetSettings;
  #users: Map<number, UserRec>;
  #nodes: NodeRec[] = [];
  #byId = new Map<number, NodeRec>();
  #byName = new Map<string, NodeRec>();
  /** Keyed by `v4 | 0` so keys stay small integers. */
  #byV4 = new Map<number, NodeRec>();
  #byV6 = new Map<string, NodeRec>();
  #classes: IdentityClass[] = [];
  /** Classes serving subnet routes: the only ones whose membership depends on address overlap. */
  #routeClasses: IdentityClass[] = [];
  #atomClasses: number[][];
  #primary: PrimaryRouteTable;
  #resolved = new Map<string, Resolved>();
  #srcIntern = new Map<string, number>();
  #globalFirst = new Map<string, number>();
  #items: ItemInfo[] = [];
  #visibility: (Bits | null)[] = [];
  #selfSrc!: Bits;
  #templates: (TemplateRule[] | null)[] = [];
  #selfTemplates = new Map<number, TemplateRule[]>();
  #classAttrs: string[][] = [];
  #routeAccess = new Map<string, RouteAccess>();
  #exitAccess!: Bits;
  #viaItems: ItemInfo[] = [];
  #sshInfos: SshRuleInfo[] | null = null;
  #sshCache = new Map<string, tailcfg.SSHRule[]>();
  #allNodesSet: IPSet | null = null;
  #routeStrings: string[] = [];
  #displayName: string;
  #domains: ReadonlySet<string> | null;

  constructor(compiled: CompiledPolicy, facts: TailnetFacts, options: PolicyIndexOptions = {}) {
    this.#compiledPolicy = compiled;
    this.#settings = facts.settings ?? {};
    this.#users = buildUsers(facts.users);
    const owner = facts.users.find((u) => u.role === 'owner');
    this.#displayName = this.settings.displayName ?? owner?.email ?? facts.users[0]?.email ?? '';
    const domains = this.settings.domains ?? (owner !== undefined ? [emailDomain(owner.email)] : null);
    this.#domains = domains === null ? null : new Set(domains.map((d) => d.toLowerCase()));

    for (const nf of facts.nodes) this.#addNode(nf);
    this.#atomClasses = compiled.atoms.map(() => []);
    this.#assignUserAtoms();
    this.#classify();
    this.#routeClasses = this.#classes.filter((c) => c.routes.length > 0);
    this.#primary =
      options.primaryRoutes ??
      new PrimaryRouteTable(
        this.#nodes.filter((n) => n.routeTexts.length > 0).map((n) => ({ nodeId: n.id, order: n.order, online: n.facts.online, routes: n.routeTexts })),
      );
    this.#routeStrings = [...new Set(this.#nodes.flatMap((n) => n.routeTexts))].sort();
    this.#checkDomains();
    this.#resolveItems();
    this.#buildVisibility();
    this.#buildRouteAccess();
    this.#buildAttrs();
    for (let k = 0; k < this.#classes.length; k++) this.#templates.push(null);
    for (const cls of this.#classes) this.#templates[cls.id] = this.#classTemplate(cls);
  }

  get compiled(): CompiledPolicy {
    return this.#compiledPolicy;
  }

  get settings(): TailnetSettings {
    return this.#settings;
  }

  // --- updates ------------------------------------------------------------------------------

  /** Adds a node, or replaces the facts of one (tags, user, routes, addresses, name, online). */
  upsertNode(facts: NodeFacts): PolicyDelta {
    const table = this.#primary.clone();
    const routes = buildNode(0, facts, new Map()).routeTexts;
    if (routes.length > 0) table.upsert({ nodeId: facts.id, order: facts.registeredOrder ?? facts.id, online: facts.online, routes });
    else table.remove(facts.id);
    const nodes = this.#nodes.map((n) => n.facts);
    const at = nodes.findIndex((n) => n.id === facts.id);
    if (at >= 0) nodes[at] = facts;
    else nodes.push(facts);
    return this.#rebuildAndDiff(this.compiled, this.#userFacts(), nodes, table);
  }

  /** Removes a node; unknown ids change nothing. */
  removeNode(id: number): PolicyDelta {
    if (!this.#byId.has(id)) return EMPTY_POLICY_DELTA;
    const table = this.#primary.clone();
    table.remove(id);
    const nodes = this.#nodes.filter((n) => n.id !== id).map((n) => n.facts);
    return this.#rebuildAndDiff(this.compiled, this.#userFacts(), nodes, table);
  }

  /** A node came online or went offline; only HA route failover depends on it. */
  setOnline(id: number, online: boolean): PolicyDelta {
    const node = this.#byId.get(id);
    if (node === undefined || node.facts.online === online) return EMPTY_POLICY_DELTA;
    const table = this.#primary.clone();
    table.setOnline(id, online);
    const nodes = this.#nodes.map((n) => (n.id === id ? { ...n.facts, online } : n.facts));
    return this.#rebuildAndDiff(this.compiled, this.#userFacts(), nodes, table);
  }

  /** Adds a user or changes one's name, email or role. */
  upsertUser(user: UserFacts): PolicyDelta {
    const users = this.#userFacts();
    const at = users.findIndex((u) => u.id === user.id);
    if (at >= 0) users[at] = user;
    else users.push(user);
    return this.#rebuildAndDiff(this.compiled, users, this.#nodes.map((n) => n.facts), this.#primary.clone());
  }

  /** Removes a user; its untagged nodes, if any remain, stop matching user selectors. */
  removeUser(id: number): PolicyDelta {
    if (!this.#users.has(id)) return EMPTY_POLICY_DELTA;
    const users = this.#userFacts().filter((u) => u.id !== id);
    return this.#rebuildAndDiff(this.compiled, users, this.#nodes.map((n) => n.facts), this.#primary.clone());
  }

  /** Binds another compiled policy to the same tailnet. */
  replacePolicy(compiled: CompiledPolicy): PolicyDelta {
    return this.#rebuildAndDiff(compiled, this.#userFacts(), this.#nodes.map((n) => n.facts), this.#primary.clone());
  }

  #userFacts(): UserFacts[] {
    return [...this.#users.values()].map((u) => ({ id: u.id, name: u.name, email: u.email, role: u.role }));
  }

  #rebuildAndDiff(compiled: CompiledPolicy, users: UserFacts[], nodes: NodeFacts[], table: PrimaryRouteTable): PolicyDelta {
    const next = new PolicyIndex(compiled, { users, nodes, settings: this.#settings }, { primaryRoutes: table });
    const delta = diffIndexes(this, next);
    this.#adopt(next);
    return delta;
  }

  /** Takes over another index's state (after a rebuild). */
  #adopt(o: PolicyIndex): void {
    this.#compiledPolicy = o.#compiledPolicy;
    this.#settings = o.#settings;
    this.#users = o.#users;
    this.#nodes = o.#nodes;
    this.#byId = o.#byId;
    this.#byName = o.#byName;
    this.#byV4 = o.#byV4;
    this.#byV6 = o.#byV6;
    this.#classes = o.#classes;
    this.#routeClasses = o.#routeClasses;
    this.#atomClasses = o.#atomClasses;
    this.#primary = o.#primary;
    this.#resolved = o.#resolved;
    this.#srcIntern = o.#srcIntern;
    this.#globalFirst = o.#globalFirst;
    this.#items = o.#items;
    this.#visibility = o.#visibility;
    this.#selfSrc = o.#selfSrc;
    this.#templates = o.#templates;
    this.#selfTemplates = o.#selfTemplates;
    this.#classAttrs = o.#classAttrs;
    this.#routeAccess = o.#routeAccess;
    this.#exitAccess = o.#exitAccess;
    this.#viaItems = o.#viaItems;
    this.#sshInfos = o.#sshInfos;
    this.#sshCache = o.#sshCache;
    this.#allNodesSet = o.#allNodesSet;
    this.#routeStrings = o.#routeStrings;
    this.#displayName = o.#displayName;
    this.#domains = o.#domains;
    this.#routeSetCache = o.#routeSetCache;
    this.#viaSelections = o.#viaSelections;
    this.#selfItems = o.#selfItems;
  }

  // --- building -----------------------------------------------------------------------------

  #addNode(nf: NodeFacts): void {
    if (this.#byId.has(nf.id)) throw new Error(`node id ${nf.id} appears twice`);
    const node = buildNode(this.#nodes.length, nf, this.#users);
    this.#nodes.push(node);
    this.#byId.set(node.id, node);
    this.#byName.set(node.name, node);
    if (node.v4 >= 0) this.#byV4.set(node.v4 | 0, node);
    if (node.v6Text !== null) this.#byV6.set(node.v6Text, node);
  }

  #assignUserAtoms(): void {
    const byLogin = new Map<string, UserRec[]>();
    const index = (key: string, user: UserRec): void => {
      const k = key.toLowerCase();
      const list = byLogin.get(k);
      if (list === undefined) byLogin.set(k, [user]);
      else list.push(user);
    };
    for (const user of this.#users.values()) {
      if (user.email !== '') index(user.email, user);
      index(user.name, user);
      index(`${user.name}@`, user);
    }
    for (const atom of this.compiled.atoms) {
      const spec = atom.spec;
      if (spec.kind === 'users') {
        const matched = new Set<UserRec>();
        for (const login of spec.logins) for (const u of byLogin.get(login.trim().toLowerCase()) ?? []) matched.add(u);
        for (const u of matched) u.atoms.push(atom.id);
      } else if (isUserAtom(spec)) {
        for (const u of this.#users.values()) if (userAtomMatches(spec, u)) u.atoms.push(atom.id);
      }
    }
  }

  #classify(): void {
    const atoms = this.compiled.atoms;
    const tagAtoms = new Map<string, number[]>();
    let taggedAtom = -1;
    const literalAtoms: Atom[] = [];
    for (const atom of atoms) {
      if (atom.spec.kind === 'tag') {
        const list = tagAtoms.get(atom.spec.tag) ?? [];
        list.push(atom.id);
        tagAtoms.set(atom.spec.tag, list);
      } else if (atom.spec.kind === 'tagged') taggedAtom = atom.id;
      else if (atom.spec.kind === 'literal') literalAtoms.push(atom);
    }
    let anyLiteral = IPSet.EMPTY;
    for (const a of literalAtoms) if (a.spec.kind === 'literal') anyLiteral = anyLiteral.union(a.spec.set);
    const postureNames = this.compiled.postureNames;
    const policyPostures = this.compiled.policy.postures;
    const byKey = new Map<string, IdentityClass>();
    for (const node of this.#nodes) {
      const ids: number[] = [];
      if (node.tagged) {
        if (taggedAtom >= 0) ids.push(taggedAtom);
        for (const tag of node.tags) for (const id of tagAtoms.get(tag) ?? []) ids.push(id);
      } else if (node.user !== null) {
        ids.push(...node.user.atoms);
      }
      if (literalAtoms.length > 0 && ((node.v4 >= 0 && anyLiteral.containsV4(node.v4)) || (node.v6 !== null && anyLiteral.containsV6(node.v6)))) {
        for (const a of literalAtoms) if (literalAtomMatches(a, node)) ids.push(a.id);
      }
      ids.sort((a, b) => a - b);
      const postures = postureNames.filter((name) => meetsPosture(policyPostures.get(name) ?? [], node.facts.postureAttributes));
      const key = `${ids.join(',')}|${node.routeTexts.join(',')}|${node.exitRoutes.length > 0 ? 'x' : ''}|${postures.join(',')}`;
      let cls = byKey.get(key);
      if (cls === undefined) {
        const flags = new Uint8Array(atoms.length);
        for (const id of ids) flags[id] = 1;
        const routeSet = IPSet.of(...node.routes);
        cls = {
          id: this.#classes.length,
          key,
          atoms: ids,
          atomFlags: flags,
          nodes: [],
          routes: node.routes,
          routeTexts: node.routeTexts,
          routeSet,
          exit: node.exitRoutes.length > 0,
          postures: new Set(postures),
          addresses: null,
        };
        this.#classes.push(cls);
        byKey.set(key, cls);
        for (const id of ids) this.#atomClasses[id]!.push(cls.id);
      }
      cls.nodes.push(node);
      node.classId = cls.id;
    }
  }

  /** `localpart:*@domain` and ssh `user:*@domain` must name a domain of this tailnet. */
  #checkDomains(): void {
    if (this.#domains === null) return;
    const source = this.compiled.policy.source;
    for (const rule of this.compiled.policy.ssh ?? []) {
      for (const u of rule.users) {
        const m = /^localpart:\*@(.+)$/.exec(u.text);
        // Domains compare exactly: the service rejects `localpart:*@EXAMPLE.COM`.
        if (m !== null && !this.#domains.has(m[1]!)) {
          throw source.error(
            'invalidSsh',
            `${m[1]} is not associated with this Tailnet and cannot be used in user:*@<domain> expressions`,
            u.at,
            u.path,
          );
        }
      }
      for (const s of rule.src) {
        if (s.alias.kind === 'userDomain' && !this.#domains.has(s.alias.domain)) {
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

  #classAddresses(cls: IdentityClass): IPSet {
    if (cls.addresses === null) cls.addresses = nodeAddressSet(cls.nodes);
    return cls.addresses;
  }

  #allNodes(): IPSet {
    if (this.#allNodesSet === null) this.#allNodesSet = nodeAddressSet(this.#nodes);
    return this.#allNodesSet;
  }

  #bits(): Bits {
    return new Bits(this.#classes.length);
  }

  /** Binds a selection: which classes it names and which addresses it covers. */
  #resolve(sel: Selection): Resolved {
    const cached = this.#resolved.get(sel.key);
    if (cached !== undefined) return cached;
    const identity = this.#bits();
    if (sel.wildcard || sel.dangerAll) for (let i = 0; i < this.#classes.length; i++) identity.set(i);
    else for (const atom of sel.atoms) for (const c of this.#atomClasses[atom] ?? []) identity.set(c);
    if (sel.postures.length > 0) {
      // Only devices meeting one of the postures are sources; literal addresses are no devices.
      const restricted = this.#bits();
      for (const c of identity) if (sel.postures.some((p) => this.#classes[c]!.postures.has(p))) restricted.set(c);
      const resolved = new Resolved(sel, restricted, () => this.#identityAddresses(restricted));
      this.#resolved.set(sel.key, resolved);
      return resolved;
    }
    const resolved = new Resolved(sel, identity, () => this.#selectionAddresses(sel));
    if (this.#routeClasses.length > 0) {
      const members = identity.clone();
      for (const cls of this.#routeClasses) if (!members.has(cls.id) && cls.routeSet.overlaps(resolved.ipSet)) members.set(cls.id);
      resolved.members = members;
    }
    this.#resolved.set(sel.key, resolved);
    return resolved;
  }

  #identityAddresses(classes: Bits): IPSet {
    const b = new IPSetBuilder();
    for (const c of classes) b.addSet(this.#classAddresses(this.#classes[c]!));
    return b.build();
  }

  /** The addresses a selection covers: named nodes' addresses, literals, `*`'s space and routes. */
  #selectionAddresses(sel: Selection): IPSet {
    if (sel.dangerAll) return IPSet.of({ addr: { family: 4, value: 0n }, bits: 0 }, { addr: { family: 6, value: 0n }, bits: 0 });
    if (sel.wildcard) return this.#allNodes().union(sel.literal).union(TAILSCALE_SPACE).union(this.#routeSet());
    // A literal names its prefix, not the other addresses of the nodes inside it.
    const byIdentity = this.#bits();
    for (const part of sel.parts) {
      if (part.kind === 'atom' && part.atom !== null) for (const c of this.#atomClasses[part.atom] ?? []) byIdentity.set(c);
    }
    const b = new IPSetBuilder();
    for (const c of byIdentity) b.addSet(this.#classAddresses(this.#classes[c]!));
    return b.build().union(sel.literal);
  }

  #routeSetCache: IPSet | null = null;
  #routeSet(): IPSet {
    if (this.#routeSetCache === null) {
      const b = new IPSetBuilder();
      for (const n of this.#nodes) for (const r of n.routes) b.addPrefix(r);
      this.#routeSetCache = b.build();
    }
    return this.#routeSetCache;
  }

  /** The set of addresses one selector names, for per-source strings next to `*`. */
  #partSet(part: SelectionPart): IPSet {
    if (part.kind === 'literal') return part.literal ?? IPSet.EMPTY;
    if (part.kind === 'atom' && part.atom !== null) {
      const b = new IPSetBuilder();
      for (const c of this.#atomClasses[part.atom] ?? []) b.addSet(this.#classAddresses(this.#classes[c]!));
      return b.build();
    }
    return IPSet.EMPTY;
  }

  /**
   * SrcIPs as the service writes them. Literal prefixes (hosts, CIDRs) are one set rendered as
   * addresses, CIDRs and ranges; each node a user, group, tag or autogroup names is listed by
   * its own addresses, never merged with its neighbours. With `*`: Tailscale's space, every
   * served subnet route, then each other source's own strings (kept even when covered).
   * `["*"]` for autogroup:danger-all.
   */
  #renderSources(res: Resolved): string[] {
    const sel = res.sel;
    if (sel.postures.length > 0) return nodeTexts(nodesOfClasses(res.identity, this.#classes));
    if (sel.dangerAll) return ['*'];
    const out: string[] = [];
    const seen = new Set<string>();
    const push = (s: string): void => {
      if (!seen.has(s)) {
        seen.add(s);
        out.push(s);
      }
    };
    const literal = sel.wildcard ? TAILSCALE_SPACE.union(sel.literal) : sel.literal;
    for (const s of literal.toStrings()) push(s);
    if (sel.wildcard) {
      for (const r of this.#routeStrings) push(r);
      for (const part of sel.parts) if (part.kind === 'literal' && part.literal !== null) for (const s of part.literal.toStrings()) push(s);
    }
    const classes = this.#bits();
    for (const part of sel.parts) {
      if (part.kind === 'atom' && part.atom !== null) for (const c of this.#atomClasses[part.atom] ?? []) classes.set(c);
    }
    const checkLiteral = !sel.wildcard && !literal.isEmpty();
    for (const n of nodesOfClasses(classes, this.#classes)) {
      if (n.v4Text !== null && !(checkLiteral && literal.containsV4(n.v4))) push(n.v4Text);
      if (n.v6Text !== null && !(checkLiteral && literal.containsV6(n.v6!))) push(n.v6Text);
    }
    return out;
  }

  /**
   * An id per distinct SrcIPs list, so rules with equal sources merge. Small lists are keyed by
   * content (autogroup:self lists must meet equal rule lists); a large list can only equal the
   * rendering of the same selection, so it is keyed by that selection.
   */
  #intern(strings: readonly string[], selectionKey: string | null = null): number {
    const key = selectionKey !== null && strings.length > 64 ? `sel:${selectionKey}` : strings.join(' ');
    let id = this.#srcIntern.get(key);
    if (id === undefined) {
      id = this.#srcIntern.size;
      this.#srcIntern.set(key, id);
    }
    return id;
  }

  #resolveItems(): void {
    const rendered = new Map<string, { strings: string[]; id: number }>();
    for (const item of this.compiled.items) {
      const src = this.#resolve(item.src);
      let r = rendered.get(item.src.key);
      if (r === undefined) {
        const strings = this.#renderSources(src);
        r = { strings, id: this.#intern(strings, item.src.key) };
        rendered.set(item.src.key, r);
      }
      const info: ItemInfo = { item, src, srcIPs: r.strings, srcId: r.id };
      this.#items.push(info);
      if (item.kind === 'via') this.#viaItems.push(info);
      // Where a merged rule stands tailnet-wide: the first rule with these sources and
      // protocols that exists at all (it has sources and names some destination).
      if (item.kind === 'net' && r.strings.length > 0 && item.dsts.some((d) => this.#partExists(d.part))) {
        const key = mergeKey(r.id, item.ipProto);
        const order = item.order * 8;
        if (!this.#globalFirst.has(key)) this.#globalFirst.set(key, order);
      }
    }
  }

  /** Whether a destination names anything in this tailnet (a node, a prefix, `*`, the internet). */
  #partExists(part: SelectionPart): boolean {
    switch (part.kind) {
      case 'wildcard':
      case 'internet':
      case 'literal':
        return true;
      case 'atom':
        return part.atom !== null && (this.#atomClasses[part.atom]?.length ?? 0) > 0;
      default:
        return false;
    }
  }

  // --- visibility -----------------------------------------------------------------------------

  /** Classes an item delivers to, for visibility: who is a destination of it. */
  #dstMembers(info: ItemInfo): Bits {
    const item = info.item;
    const out = this.#bits();
    if (item.kind === 'net') {
      for (const d of item.dsts) this.#partMembers(d.part, out);
    } else if (item.kind === 'cap') {
      for (const part of item.dst.parts) this.#partMembers(part, out);
    } else if (item.kind === 'via') {
      const via = this.#resolve(this.#viaSelection(item.viaTags));
      for (const c of via.identity) {
        const cls = this.#classes[c]!;
        if (this.#viaServes(cls, item.dst)) out.set(c);
      }
    }
    return out;
  }

  #partMembers(part: SelectionPart, out: Bits): void {
    switch (part.kind) {
      case 'wildcard':
        for (let i = 0; i < this.#classes.length; i++) out.set(i);
        return;
      case 'atom':
      case 'literal': {
        if (part.atom !== null) for (const c of this.#atomClasses[part.atom] ?? []) out.set(c);
        const set = part.kind === 'literal' ? (part.literal ?? IPSet.EMPTY) : this.#partSet(part);
        for (const cls of this.#classes) if (cls.routes.length > 0 && cls.routeSet.overlaps(set)) out.set(cls.id);
        return;
      }
      case 'internet':
        for (const cls of this.#classes) if (cls.exit || (cls.routes.length > 0 && cls.routeSet.overlaps(INTERNET))) out.set(cls.id);
        return;
      default:
        return;
    }
  }

  #viaSelections = new Map<string, Selection>();
  #viaSelection(tags: readonly string[]): Selection {
    const key = tags.join(',');
    let sel = this.#viaSelections.get(key);
    if (sel === undefined) {
      sel = this.compiled.select(tags.map((t) => ({ text: t, alias: { kind: 'tag', name: t } })));
      this.#viaSelections.set(key, sel);
    }
    return sel;
  }

  /** Whether a router class serves some destination of a via grant. */
  #viaServes(cls: IdentityClass, dst: Selection): boolean {
    if (dst.internet && cls.exit) return true;
    return cls.routes.length > 0 && cls.routeSet.overlaps(dst.literal);
  }

  #buildVisibility(): void {
    const n = this.#classes.length;
    for (let i = 0; i < n; i++) this.#visibility.push(null);
    this.#selfSrc = this.#bits();
    for (const info of this.#items) {
      const item = info.item;
      if (item.kind === 'selfNet' || item.kind === 'selfCap') {
        this.#selfSrc.or(info.src.members);
        continue;
      }
      if (item.kind !== 'cap' && info.srcIPs.length === 0) continue;
      const src = info.src.members;
      const dst = this.#dstMembers(info);
      if (src.isEmpty() || dst.isEmpty()) continue;
      for (const a of src) this.#row(a).or(dst);
      for (const b of dst) this.#row(b).or(src);
    }
  }

  #row(c: number): Bits {
    let row = this.#visibility[c];
    if (row === null || row === undefined) {
      row = this.#bits();
      this.#visibility[c] = row;
    }
    return row;
  }

  // --- route access -------------------------------------------------------------------------

  #buildRouteAccess(): void {
    this.#exitAccess = this.#bits();
    const routes = new Map<string, IPPrefix>();
    for (const cls of this.#classes) for (let i = 0; i < cls.routes.length; i++) routes.set(cls.routeTexts[i]!, cls.routes[i]!);
    for (const [text] of routes) this.#routeAccess.set(text, { regular: this.#bits() });
    for (const info of this.#items) {
      const item = info.item;
      if (item.kind !== 'net' && item.kind !== 'cap') continue;
      if (item.kind === 'net' && info.srcIPs.length === 0) continue;
      const parts = item.kind === 'net' ? item.dsts.map((d) => d.part) : item.dst.parts;
      const coversInternet = parts.some((p) => p.kind === 'wildcard' || p.kind === 'internet');
      if (coversInternet) this.#exitAccess.or(info.src.members);
      if (routes.size === 0) continue;
      let dstSet: IPSet | null = null;
      let dstMembers: Bits | null = null;
      for (const [text, prefix] of routes) {
        const access = this.#routeAccess.get(text)!;
        const dstHits = parts.some((p) => {
          if (p.kind === 'wildcard') return true;
          if (p.kind === 'internet') return INTERNET.overlapsPrefix(prefix);
          if (p.kind === 'literal' || p.kind === 'atom') {
            dstSet ??= this.#partsSet(parts);
            return dstSet.overlapsPrefix(prefix);
          }
          return false;
        });
        if (dstHits) access.regular.or(info.src.members);
        // Return traffic: a route inside the sources lets the destinations reach it.
        if (info.src.ipSet.overlapsPrefix(prefix)) {
          dstMembers ??= this.#dstMembers(info);
          access.regular.or(dstMembers);
        }
      }
    }
  }

  #partsSet(parts: readonly SelectionPart[]): IPSet {
    const b = new IPSetBuilder();
    for (const p of parts) b.addSet(this.#partSet(p));
    return b.build();
  }

  // --- node attributes ----------------------------------------------------------------------

  #buildAttrs(): void {
    for (let i = 0; i < this.#classes.length; i++) this.#classAttrs.push([]);
    for (const na of this.compiled.nodeAttrs) {
      if (na.attrs.length === 0) continue;
      const res = this.#resolve(na.target);
      for (const c of res.identity) {
        const list = this.#classAttrs[c]!;
        for (const attr of na.attrs) if (!list.includes(attr)) list.push(attr);
      }
    }
  }

  // --- filter templates ---------------------------------------------------------------------

  #classTemplate(cls: IdentityClass): TemplateRule[] {
    const out: TemplateRule[] = [];
    for (const info of this.#items) {
      const item = info.item;
      const order = item.order * 8;
      switch (item.kind) {
        case 'net': {
          if (info.srcIPs.length === 0) break;
          const entries: DstEntry[] = [];
          for (const d of item.dsts) this.#netEntries(cls, d.part, d.literalPrefixes, d.ports, entries);
          if (entries.length > 0) out.push({ kind: 'ports', order, srcId: info.srcId, srcIPs: info.srcIPs, proto: item.ipProto, entries });
          break;
        }
        case 'cap': {
          const grants: CapEntry[] = [];
          for (const part of item.dst.parts) {
            const dsts = this.#capDsts(cls, part);
            if (dsts !== undefined) grants.push({ dsts, capMap: item.capMap });
          }
          if (grants.length > 0) out.push({ kind: 'cap', order, srcIPs: info.srcIPs, grants });
          if (info.src.members.has(cls.id)) this.#companions(item.capMap, this.#renderSources(this.#resolve(item.dst)), order, out);
          break;
        }
        case 'via': {
          const via = this.#resolve(this.#viaSelection(item.viaTags));
          if (!via.identity.has(cls.id) || info.srcIPs.length === 0) break;
          // The service delivers no CapGrant for a grant with `via`; only its ip rules.
          if (item.capMap !== null) break;
          const entries: DstEntry[] = [];
          for (const d of item.dstsWithPorts) {
            if (d.part.kind === 'internet') {
              if (cls.exit) for (const ip of INTERNET_DST_STRINGS) for (const ports of d.ports) entries.push({ ip, ports });
              continue;
            }
            for (const p of d.literalPrefixes) {
              if (cls.routeSet.overlapsPrefix(p)) for (const ports of d.ports) entries.push({ ip: renderDstLiteral(p), ports });
            }
          }
          if (entries.length > 0) out.push({ kind: 'ports', order, srcId: info.srcId, srcIPs: info.srcIPs, proto: item.ipProto, entries });
          break;
        }
        default:
          break;
      }
    }
    return out;
  }

  /** DstPorts entries one destination contributes to a class (reduction to what it serves). */
  #netEntries(cls: IdentityClass, part: SelectionPart, literalPrefixes: readonly IPPrefix[], ports: readonly PortRange[], out: DstEntry[]): void {
    const push = (ip: string | null): void => {
      for (const p of ports) out.push({ ip, ports: p });
    };
    switch (part.kind) {
      case 'wildcard':
        push('*');
        return;
      case 'atom': {
        if (part.atom !== null && cls.atomFlags[part.atom] === 1) push(SELF);
        if (cls.routes.length > 0) {
          // Another node's address inside this router's subnet: the router carries it.
          const inside = this.#partSet(part).intersect(cls.routeSet);
          for (const s of inside.toStrings()) push(s);
        }
        return;
      }
      case 'literal': {
        const inAtom = part.atom !== null && cls.atomFlags[part.atom] === 1;
        for (const p of literalPrefixes) {
          const hit =
            (inAtom && cls.nodes.some((n) => prefixHas(p, n))) ||
            (cls.routes.length > 0 && cls.routeSet.overlapsPrefix(p)) ||
            (cls.exit && INTERNET.coversPrefix(p));
          if (hit) push(renderDstLiteral(p));
        }
        return;
      }
      case 'internet':
        if (cls.exit) for (const ip of INTERNET_DST_STRINGS) push(ip);
        else if (cls.routes.length > 0) {
          for (const ip of INTERNET_DST_STRINGS) {
            const set = IPSet.tryParse(ip);
            if (set !== null && set.overlaps(cls.routeSet)) push(ip);
          }
        }
        return;
      default:
        return;
    }
  }

  /** CapGrant Dsts for a class: its own addresses (SELF), a served literal as written, or none. */
  #capDsts(cls: IdentityClass, part: SelectionPart): readonly string[] | null | undefined {
    switch (part.kind) {
      case 'wildcard':
        return SELF;
      case 'atom':
        return part.atom !== null && cls.atomFlags[part.atom] === 1 ? SELF : undefined;
      case 'literal': {
        if (part.atom !== null && cls.atomFlags[part.atom] === 1) return SELF;
        const served = (part.literal ?? IPSet.EMPTY).prefixes().filter((p) => cls.routes.length > 0 && cls.routeSet.overlapsPrefix(p));
        return served.length > 0 ? served.map(formatPrefix) : undefined;
      }
      default:
        return undefined;
    }
  }

  /** Reversed companion rules (drive-sharer, relay-target) go to the grant's sources. */
  #companions(capMap: Readonly<Record<string, unknown[]>>, srcIPs: readonly string[], order: number, out: TemplateRule[]): void {
    let sub = 1;
    for (const c of COMPANION_CAPS) {
      if (Object.prototype.hasOwnProperty.call(capMap, c.cap)) {
        out.push({ kind: 'cap', order: order + sub++, srcIPs, grants: [{ dsts: SELF, capMap: { [c.companion]: null } }] });
      }
    }
  }

  /** autogroup:self rules for one user: sources narrowed to the user's own devices. */
  #selfTemplate(user: UserRec): TemplateRule[] {
    const cached = this.#selfTemplates.get(user.id);
    if (cached !== undefined) return cached;
    const out: TemplateRule[] = [];
    const userNodes = [...user.nodes].sort(byNodeId);
    const userAddrs = nodeTexts(userNodes);
    for (const info of this.#items) {
      const item = info.item;
      if (item.kind !== 'selfNet' && item.kind !== 'selfCap') continue;
      const srcNodes = userNodes.filter((n) => info.src.members.has(n.classId));
      if (srcNodes.length === 0) continue;
      const srcIPs = nodeTexts(srcNodes);
      const order = item.order * 8;
      if (item.kind === 'selfNet') {
        const entries: DstEntry[] = [];
        for (const m of userNodes) {
          for (const ports of item.ports) {
            if (m.v4Text !== null) entries.push({ ip: m.v4Text, ports });
            if (m.v6Text !== null) entries.push({ ip: m.v6Text, ports });
          }
        }
        out.push({ kind: 'ports', order, srcId: this.#intern(srcIPs), srcIPs, proto: item.ipProto, entries });
      } else {
        out.push({ kind: 'cap', order, srcIPs, grants: [{ dsts: SELF, capMap: item.capMap }] });
        this.#companions(item.capMap, userAddrs, order, out);
      }
    }
    this.#selfTemplates.set(user.id, out);
    return out;
  }

  // --- queries ------------------------------------------------------------------------------

  node(idOrName: number | string): NodeFacts {
    return this.#node(idOrName).facts;
  }

  hasNode(idOrName: number | string): boolean {
    return (typeof idOrName === 'number' ? this.#byId.get(idOrName) : this.#byName.get(idOrName)) !== undefined;
  }

  nodeIds(): number[] {
    return this.#nodes.map((n) => n.id);
  }

  /** Number of identity classes (for benchmarks and diagnostics). */
  get classCount(): number {
    return this.#classes.length;
  }

  /** The class a node belongs to; nodes with equal class ids get equal filter templates. */
  classOf(nodeId: number): number {
    return this.#node(nodeId).classId;
  }

  #node(idOrName: number | string): NodeRec {
    const node = typeof idOrName === 'number' ? this.#byId.get(idOrName) : this.#byName.get(idOrName);
    if (node === undefined) {
      throw new PolicyError('unknownNode', `node ${JSON.stringify(idOrName)} is not in the tailnet`, null);
    }
    return node;
  }

  /** The node's PacketFilter: rules whose destinations it is, or routes for, in policy order. */
  filterFor(nodeId: number): tailcfg.FilterRule[] {
    const node = this.#node(nodeId);
    const template = this.#templates[node.classId]!;
    const self = node.user !== null && this.#hasSelfItems() ? this.#selfTemplate(node.user) : [];
    const rules = self.length === 0 ? template : [...template, ...self].sort((a, b) => a.order - b.order);
    return instantiate(rules, node, this.#globalFirst);
  }

  #selfItems: boolean | null = null;
  #hasSelfItems(): boolean {
    if (this.#selfItems === null) this.#selfItems = this.#items.some((i) => i.item.kind === 'selfNet' || i.item.kind === 'selfCap');
    return this.#selfItems;
  }

  /**
   * The node's peers: every node it may reach or that may reach it. The relation is
   * symmetric, so this is also the set of nodes that must hear about changes to this node.
   */
  peersOf(nodeId: number): number[] {
    const node = this.#node(nodeId);
    const out: number[] = [];
    const row = this.#visibility[node.classId];
    if (row !== null && row !== undefined) {
      for (const c of row) for (const m of this.#classes[c]!.nodes) if (m !== node) out.push(m.id);
    }
    if (node.user !== null && node.user.nodes.length > 1 && !this.#selfSrc.isEmpty()) {
      const selfIn = this.#selfSrc.has(node.classId);
      const present = new Set(out);
      for (const m of node.user.nodes) {
        if (m === node || present.has(m.id)) continue;
        if (selfIn || this.#selfSrc.has(m.classId)) out.push(m.id);
      }
    }
    return out;
  }

  /** Whether `a` and `b` see each other. */
  sees(a: number, b: number): boolean {
    if (a === b) return false;
    const na = this.#node(a);
    const nb = this.#node(b);
    if (this.#visibility[na.classId]?.has(nb.classId) === true) return true;
    return na.user !== null && na.user === nb.user && (this.#selfSrc.has(na.classId) || this.#selfSrc.has(nb.classId));
  }

  /** A peer as `viewerId` sees it: addresses, the routes it carries for this viewer, caps. */
  peerView(viewerId: number, peerId: number): PeerView {
    const viewer = this.#node(viewerId);
    const peer = this.#node(peerId);
    // An IPv6-only (disable-ipv4) node neither has nor sees IPv4 node addresses.
    const allowed = this.#ipv6Only(viewer) ? this.#addresses(peer).filter((a) => a.includes(':')) : this.#addresses(peer);
    const primary: string[] = [];
    for (const text of peer.routeTexts) {
      if (this.#designatedRouter(viewer, text) === peer.id) {
        allowed.push(text);
        primary.push(text);
      }
    }
    let capMap: tailcfg.NodeCapMap | null = null;
    if (peer.exitRoutes.length > 0) {
      if (this.#canUseExit(viewer, peer)) allowed.push(...peer.exitRoutes);
      capMap = { [PEER_CAP_SUGGEST_EXIT]: null };
    }
    return { AllowedIPs: allowed, PrimaryRoutes: primary, Tags: [...peer.tags], CapMap: capMap };
  }

  /** Which router carries `prefix` for this viewer, if the viewer may use the prefix at all. */
  #designatedRouter(viewer: NodeRec, prefix: string): number | null {
    const access = this.#routeAccess.get(prefix);
    if (access !== undefined && access.regular.has(viewer.classId)) return this.#primary.primaryFor(prefix);
    // A router serving the same prefix (an HA secondary) learns the primary's route.
    if (viewer.routeTexts.includes(prefix)) return this.#primary.primaryFor(prefix);
    const p = parsePrefixText(prefix);
    const viaSels: Selection[] = [];
    for (const info of this.#viaItems) {
      const item = info.item;
      if (item.kind !== 'via' || !info.src.members.has(viewer.classId)) continue;
      if (!item.dst.literal.overlapsPrefix(p)) continue;
      viaSels.push(this.#viaSelection(item.viaTags));
    }
    if (viaSels.length === 0) return null;
    return this.#primary.electAmong(prefix, (id) => {
      const router = this.#byId.get(id);
      return router !== undefined && viaSels.some((sel) => this.#resolve(sel).identity.has(router.classId));
    });
  }

  #canUseExit(viewer: NodeRec, exitNode: NodeRec): boolean {
    if (this.#exitAccess.has(viewer.classId)) return true;
    for (const info of this.#viaItems) {
      const item = info.item;
      if (item.kind !== 'via' || !item.dst.internet || !info.src.members.has(viewer.classId)) continue;
      if (this.#resolve(this.#viaSelection(item.viaTags)).identity.has(exitNode.classId)) return true;
    }
    return false;
  }

  /** The node as it sees itself. */
  selfView(nodeId: number): SelfView {
    const node = this.#node(nodeId);
    const addresses = this.#addresses(node);
    return {
      Addresses: addresses,
      AllowedIPs: [...addresses, ...node.routeTexts, ...node.exitRoutes],
      PrimaryRoutes: this.#primary.primariesOf(node.id),
      Tags: [...node.tags],
      CapMap: this.#selfCaps(node),
    };
  }

  /** Whether a node is IPv6-only: the disable-ipv4 attribute, or `disableIPv4` for the tailnet. */
  #ipv6Only(node: NodeRec): boolean {
    return this.compiled.policy.disableIPv4 || this.#classAttrs[node.classId]!.includes(ATTR_DISABLE_IPV4);
  }

  /** The node's own prefixes; an IPv6-only node has no IPv4 one. */
  #addresses(node: NodeRec): string[] {
    const out: string[] = [];
    if (node.v4Text !== null && !this.#ipv6Only(node)) out.push(`${node.v4Text}/32`);
    if (node.v6Text !== null) out.push(`${node.v6Text}/128`);
    return out;
  }

  #selfCaps(node: NodeRec): tailcfg.NodeCapMap {
    const caps: tailcfg.NodeCapMap = {};
    for (const c of BASE_SELF_CAPS) caps[c] = null;
    const role: UserRole | null = node.user?.role ?? null;
    if (node.tagged) caps[CAP_IS_OWNER] = null;
    else if (role !== null) {
      if (role === 'owner' || role === 'admin') caps[CAP_IS_ADMIN] = null;
      if (role === 'owner') caps[CAP_IS_OWNER] = null;
    }
    caps['tailnet-display-name'] = [this.#displayName];
    if (this.settings.autoUpdate !== undefined) caps['default-auto-update'] = [this.settings.autoUpdate];
    if (this.compiled.policy.randomizeClientPort) caps['randomize-client-port'] = null;
    for (const attr of this.#classAttrs[node.classId]!) {
      caps[attr] = null;
      if (attr === 'funnel') for (const extra of FUNNEL_EXTRA_CAPS) caps[extra] = null;
    }
    return caps;
  }

  /** The node's SSH policy, or null when the policy has no `ssh` section. */
  sshPolicyFor(nodeId: number): tailcfg.SSHPolicy | null {
    if (this.compiled.ssh === null) return null;
    return { rules: this.sshRulesFor(nodeId) };
  }

  sshRulesFor(nodeId: number): tailcfg.SSHRule[] {
    const node = this.#node(nodeId);
    if (this.compiled.ssh === null) return [];
    const infos = this.#sshRuleInfos();
    const out: tailcfg.SSHRule[] = [];
    for (const info of infos) {
      if (info.srcNodes.length === 0) continue;
      const append = (principals: tailcfg.SSHPrincipal[], userId: number | null): void => {
        out.push(sshRule(principals, info.baseUsers, info));
        if (userId !== null) {
          const lp = info.localparts.get(userId);
          if (lp !== undefined) out.push(sshRule(principals, { [lp]: lp }, info));
        }
      };
      if (info.rule.selfDst && node.user !== null) {
        const principals = info.byUser.get(node.user.id);
        if (principals !== undefined && principals.length > 0) append(principals, node.user.id);
      }
      if (info.rule.dst.parts.length === 0) continue;
      if (info.dstIdentity.has(node.classId)) {
        if (info.hasLocalpart) {
          for (const uid of info.userIds) append(info.byUser.get(uid)!, uid);
          if (info.tagged.length > 0) append([...info.tagged], null);
        } else {
          if (info.allPrincipals === null) {
            const all: tailcfg.SSHPrincipal[] = [];
            for (const uid of info.userIds) all.push(...info.byUser.get(uid)!);
            all.push(...info.tagged);
            info.allPrincipals = all;
          }
          if (info.allPrincipals.length > 0) append(info.allPrincipals, null);
        }
      } else if (info.hasLocalpart && info.srcSet.has(node.id)) {
        // The service also gives a source that is not a destination the rules for its own
        // identity when localpart mappings are involved (seen in every localpart capture).
        if (node.tagged) append(this.#principals([node], 1), null);
        else if (node.user !== null) {
          const principals = info.byUser.get(node.user.id);
          if (principals !== undefined) append(principals, node.user.id);
        }
      }
    }
    // First match wins on the client; the service puts check rules before accept rules.
    const checks = out.filter((r) => r.action.holdAndDelegate !== undefined);
    const accepts = out.filter((r) => r.action.holdAndDelegate === undefined);
    return [...checks, ...accepts];
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

  #sshRuleInfos(): SshRuleInfo[] {
    if (this.#sshInfos !== null) return this.#sshInfos;
    const infos: SshRuleInfo[] = [];
    const base = this.settings.sshCheckBaseUrl ?? 'https://unused';
    for (const rule of this.compiled.ssh ?? []) {
      const src = this.#resolve(rule.src);
      const srcNodes: NodeRec[] = [];
      for (const c of src.identity) srcNodes.push(...this.#classes[c]!.nodes);
      if (!rule.src.wildcard && !rule.src.literal.isEmpty() && rule.src.postures.length === 0) {
        for (const n of this.#nodes) if (!src.identity.has(n.classId) && prefixSetHas(rule.src.literal, n)) srcNodes.push(n);
      }
      srcNodes.sort(byNodeId);
      const byUserNodes = new Map<number, NodeRec[]>();
      const taggedNodes: NodeRec[] = [];
      for (const n of srcNodes) {
        if (n.tagged) taggedNodes.push(n);
        else if (n.user !== null) {
          const list = byUserNodes.get(n.user.id) ?? [];
          list.push(n);
          byUserNodes.set(n.user.id, list);
        }
      }
      const byUser = new Map<number, tailcfg.SSHPrincipal[]>();
      for (const [uid, nodes] of byUserNodes) byUser.set(uid, this.#principals(nodes, 1));
      const users = rule.rule.users.map((u) => u.text);
      const baseUsers: Record<string, string> = {};
      if (users.includes('autogroup:nonroot')) baseUsers['*'] = '=';
      baseUsers['root'] = users.includes('root') ? 'root' : '';
      const localpartDomains: string[] = [];
      for (const u of users) {
        const m = /^localpart:\*@(.+)$/.exec(u);
        if (m !== null) localpartDomains.push(m[1]!);
        else if (u !== 'root' && u !== 'autogroup:nonroot') baseUsers[u] = u;
      }
      const localparts = new Map<number, string>();
      for (const domain of localpartDomains) {
        for (const user of this.#users.values()) {
          if (user.email !== '' && emailDomain(user.email) === domain.toLowerCase()) localparts.set(user.id, user.email.slice(0, user.email.lastIndexOf('@')));
        }
      }
      const action: tailcfg.SSHAction =
        rule.rule.action === 'accept'
          ? { accept: true, allowAgentForwarding: true, allowLocalPortForwarding: true, allowRemotePortForwarding: true }
          : { holdAndDelegate: `${base}/machine/ssh/action/$SRC_NODE_ID/to/$DST_NODE_ID?local_user=$LOCAL_USER` };
      infos.push({
        rule,
        srcNodes,
        srcSet: new Set(srcNodes.map((n) => n.id)),
        dstIdentity: this.#resolve(rule.dst).identity,
        byUser,
        userIds: [...byUser.keys()].sort((a, b) => a - b),
        tagged: this.#principals(taggedNodes, (n: NodeRec) => n.tags.length),
        baseUsers,
        localparts,
        hasLocalpart: localpartDomains.length > 0,
        action,
        acceptEnv: rule.rule.acceptEnv,
        allPrincipals: null,
      });
    }
    this.#sshInfos = infos;
    return infos;
  }

  /** Runs the policy's tests and sshTests against this tailnet. */
  runTests(): TestReport {
    return runPolicyTests(this);
  }

  // --- decisions for control and api --------------------------------------------------------

  /** Whether the requester may apply `requestedTags` (tagOwners, tags owned by tags). */
  tagsAllowed(owner: TagOwnerContext, requestedTags: readonly string[]): TagDecision {
    const denied: { tag: string; reason: string }[] = [];
    const user = 'userId' in owner ? this.#users.get(owner.userId) : undefined;
    for (const tag of requestedTags) {
      const owners = this.compiled.tagOwners.get(tag);
      if (owners === undefined) {
        denied.push({ tag, reason: `tag ${JSON.stringify(tag)} is not defined in tagOwners` });
        continue;
      }
      let ok = false;
      for (const part of owners.parts) {
        if (part.atom === null) continue;
        const spec = this.compiled.atoms[part.atom]!.spec;
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
  autoApprovedRoutes(node: Pick<NodeFacts, 'userId' | 'tags' | 'ipv4' | 'ipv6'>, advertisedRoutes: readonly string[]): string[] {
    const matches = (sel: Selection): boolean => this.#factsMatch(node, sel);
    const out: string[] = [];
    for (const text of advertisedRoutes) {
      const prefix = parsePrefixText(text);
      if (prefix.bits === 0) {
        if (matches(this.compiled.exitApprovers)) out.push(formatPrefix(prefix));
        continue;
      }
      const ok = this.compiled.routeApprovers.some(
        (a) => a.prefix.addr.family === prefix.addr.family && a.prefix.bits <= prefix.bits && prefixFirst(a.prefix) <= prefixFirst(prefix) && prefixLast(prefix) <= prefixLast(a.prefix) && matches(a.approvers),
      );
      if (ok) out.push(formatPrefix(prefix));
    }
    return out;
  }

  /** Whether a node described by facts (not necessarily in the index) matches a selection. */
  #factsMatch(node: Pick<NodeFacts, 'userId' | 'tags' | 'ipv4' | 'ipv6'>, sel: Selection): boolean {
    if (sel.wildcard) return true;
    const tagged = node.tags.length > 0;
    const user = !tagged && node.userId !== null ? this.#users.get(node.userId) : undefined;
    for (const part of sel.parts) {
      if (part.atom === null) continue;
      const spec = this.compiled.atoms[part.atom]!.spec;
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

  // --- helpers for tests and explain --------------------------------------------------------

  /** Nodes a selection names (identity and literal addresses; not routes). */
  nodesOf(sel: Selection): NodeFacts[] {
    return this.#nodesOf(sel).map((n) => n.facts);
  }

  #nodesOf(sel: Selection): NodeRec[] {
    if (sel.wildcard) return [...this.#nodes];
    const out: NodeRec[] = [];
    for (const n of this.#nodes) {
      if (this.#factsMatch(n.facts, sel)) out.push(n);
    }
    return out;
  }

  /** The node owning an address, if any. */
  nodeByAddress(text: string): NodeFacts | null {
    const addr = parseIP(text);
    const n = addr.family === 4 ? this.#byV4.get(Number(addr.value) | 0) : this.#byV6.get(formatIP(addr));
    return n?.facts ?? null;
  }

  /** Compiled items with their resolved sources, for evaluation (tests, explain). */
  items(): readonly { readonly item: RuleItem; readonly srcSet: IPSet; readonly srcIPs: readonly string[] }[] {
    return this.#items.map((i) => ({ item: i.item, srcSet: i.src.ipSet, srcIPs: i.srcIPs }));
  }

  /** Whether a node, by its identity, is named by one selection part. */
  nodeMatchesPart(nodeId: number, part: SelectionPart): boolean {
    const node = this.#node(nodeId);
    if (part.kind === 'wildcard') return true;
    if (part.atom !== null) return this.#classes[node.classId]!.atomFlags[part.atom] === 1 || this.#factsMatch(node.facts, { key: '', atoms: [], literal: IPSet.EMPTY, wildcard: false, dangerAll: false, internet: false, self: false, parts: [part], postures: [] });
    return false;
  }

  /** Same user and both untagged (autogroup:self). */
  sameUser(a: number, b: number): boolean {
    const na = this.#node(a);
    const nb = this.#node(b);
    return na.user !== null && na.user === nb.user;
  }

  isExitNode(nodeId: number): boolean {
    return this.#node(nodeId).exitRoutes.length > 0;
  }

  primaryRoutes(): PrimaryRouteTable {
    return this.#primary;
  }
}

// --- free helpers ---------------------------------------------------------------------------

/** The merge key of a ports rule: same sources and protocols merge. */
function mergeKey(srcId: number, proto: readonly number[] | null): string {
  return `${srcId}|${proto === null ? '' : proto.join(',')}`;
}

/**
 * Turns a node's template rules (class rules plus its own autogroup:self rules, in policy
 * order) into FilterRules. Rules with the same sources and protocols merge into one, placed
 * where the first of them stands in the tailnet-wide rule list (`globalFirst`), as the service
 * merges before it narrows rules to each node.
 */
function instantiate(rules: readonly TemplateRule[], node: NodeRec, globalFirst: ReadonlyMap<string, number>): tailcfg.FilterRule[] {
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
          SrcIPs: rule.srcIPs as string[],
          CapGrant: rule.grants.map((g) => ({ Dsts: g.dsts === SELF ? [...selfPrefixes] : [...g.dsts], CapMap: g.capMap as tailcfg.PeerCapMap })),
        },
      });
      continue;
    }
    const dstPorts: tailcfg.NetPortRange[] = [];
    for (const e of rule.entries) {
      if (e.ip === SELF) for (const ip of selfIPs) dstPorts.push({ IP: ip, Ports: { First: e.ports.first, Last: e.ports.last } });
      else dstPorts.push({ IP: e.ip, Ports: { First: e.ports.first, Last: e.ports.last } });
    }
    const key = mergeKey(rule.srcId, rule.proto);
    const existing = byKey.get(key);
    if (existing !== undefined) {
      existing.DstPorts!.push(...dstPorts);
      continue;
    }
    const fr: tailcfg.FilterRule = { SrcIPs: rule.srcIPs as string[], DstPorts: dstPorts };
    if (rule.proto !== null) fr.IPProto = [...rule.proto];
    byKey.set(key, fr);
    const first = globalFirst.get(key);
    const position = first !== undefined && first < rule.order ? first : rule.order;
    if (position !== rule.order) reordered = true;
    placed.push({ position, seq: placed.length, rule: fr });
  }
  if (reordered) placed.sort((a, b) => a.position - b.position || a.seq - b.seq);
  return placed.map((p) => p.rule);
}

function sshRule(principals: tailcfg.SSHPrincipal[], users: Readonly<Record<string, string>>, info: SshRuleInfo): tailcfg.SSHRule {
  const rule: tailcfg.SSHRule = { principals: [...principals], sshUsers: { ...users }, action: { ...info.action } };
  if (info.acceptEnv !== null) rule.acceptEnv = [...info.acceptEnv];
  return rule;
}

/** Node order in every list the index renders, so output never depends on the order of facts. */
function byNodeId(a: NodeRec, b: NodeRec): number {
  return a.id - b.id;
}

/** The nodes of some classes, in node-id order. */
function nodesOfClasses(classes: Iterable<number>, all: readonly IdentityClass[]): NodeRec[] {
  const out: NodeRec[] = [];
  for (const c of classes) for (const n of all[c]!.nodes) out.push(n);
  return out.sort(byNodeId);
}

/** Each node's own addresses as text, in node order. */
function nodeTexts(nodes: readonly NodeRec[]): string[] {
  const out: string[] = [];
  for (const n of nodes) {
    if (n.v4Text !== null) out.push(n.v4Text);
    if (n.v6Text !== null) out.push(n.v6Text);
  }
  return out;
}

function prefixHas(p: IPPrefix, n: NodeRec): boolean {
  if (p.addr.family === 4) return n.v4 >= 0 && BigInt(n.v4) >= prefixFirst(p) && BigInt(n.v4) <= prefixLast(p);
  return n.v6 !== null && n.v6 >= prefixFirst(p) && n.v6 <= prefixLast(p);
}

function prefixSetHas(set: IPSet, n: NodeRec): boolean {
  return (n.v4 >= 0 && set.containsV4(n.v4)) || (n.v6 !== null && set.containsV6(n.v6));
}

function parsePrefixText(text: string): IPPrefix {
  const set = IPSet.tryParse(text);
  const prefixes = set?.prefixes() ?? [];
  if (prefixes.length !== 1) throw new Error(`${JSON.stringify(text)} is not a prefix`);
  return prefixes[0]!;
}
