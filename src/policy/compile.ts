// Compiles a parsed Policy into a topology-independent rule list: every acl and grant becomes
// ordered items (network rules, autogroup:self rules, capability rules, via rules) whose
// selectors are interned as atoms. Binding atoms to nodes is the index's job; nothing here
// knows a node, so a compiled policy is reused for every tailnet state until the text changes.
import { type IPPrefix, formatPrefix } from '../util/ip.js';
import { IPSet, IPSetBuilder } from '../util/ip-set.js';
import { type Alias, type PortRange, ALL_PORTS, ROLE_AUTOGROUPS, aliasText } from './alias.js';
import { isSyncedGroupName, parsePolicy, type ParseOptions } from './parse.js';
import type { AliasRef, Policy, SshRule } from './syntax.js';

/** Where a compiled item came from, for explain and errors. `default` = the implicit allow-all. */
export interface RuleOrigin {
  readonly section: 'acls' | 'grants' | 'default';
  readonly index: number;
  readonly at: number;
  readonly path: string;
}

/**
 * A selector that matches nodes by identity or address. Its `key` is canonical, so the same
 * selector written twice is one atom and costs one evaluation per node.
 */
export type AtomSpec =
  | { readonly kind: 'users'; readonly logins: readonly string[] }
  | { readonly kind: 'userDomain'; readonly domain: string }
  | { readonly kind: 'member' }
  | { readonly kind: 'tagged' }
  | { readonly kind: 'role'; readonly role: string }
  /** A group synced from the identity provider (`engineering@example.com`), lower case. */
  | { readonly kind: 'syncedGroup'; readonly group: string }
  | { readonly kind: 'tag'; readonly tag: string }
  | { readonly kind: 'literal'; readonly set: IPSet };

export interface Atom {
  readonly id: number;
  readonly key: string;
  readonly spec: AtomSpec;
}

/** A list of selectors resolved as far as the policy alone allows. */
export interface Selection {
  /** Canonical text, used to share resolutions between rules. */
  readonly key: string;
  readonly atoms: readonly number[];
  /** Literal prefixes (hosts, CIDRs, addresses, ipsets) as one set. */
  readonly literal: IPSet;
  readonly wildcard: boolean;
  readonly dangerAll: boolean;
  readonly internet: boolean;
  readonly self: boolean;
  /** Each selector as written, in order (Tailscale keeps per-source strings next to `*`). */
  readonly parts: readonly SelectionPart[];
  /**
   * Device postures a source must meet (any one of them). Non-empty only on the sources of
   * rules with srcPosture (or defaultSrcPosture): then only devices that meet one count, and
   * literal addresses, which are no devices, do not.
   */
  readonly postures: readonly string[];
}

export interface SelectionPart {
  readonly text: string;
  readonly atom: number | null;
  readonly literal: IPSet | null;
  readonly kind: 'wildcard' | 'dangerAll' | 'internet' | 'self' | 'atom' | 'literal';
}

/** One destination of a network rule with its ports. */
export interface NetDestination {
  readonly part: SelectionPart;
  readonly ports: readonly PortRange[];
  /** The literal prefix as written for DstPorts (`10.0.0.0/8`), when the part is a literal. */
  readonly literalText: string | null;
  readonly literalPrefixes: readonly IPPrefix[];
}

export type RuleItem = NetItem | SelfNetItem | CapItem | SelfCapItem | ViaItem;

interface ItemBase {
  /** Position in the compiled list; rule order in filters follows it. */
  readonly order: number;
  readonly origin: RuleOrigin;
  readonly src: Selection;
}

/** Becomes FilterRules with DstPorts on each node that is, or routes for, a destination. */
export interface NetItem extends ItemBase {
  readonly kind: 'net';
  readonly ipProto: readonly number[] | null;
  readonly dsts: readonly NetDestination[];
}

/** autogroup:self destinations: per user, sources narrowed to that user's devices. */
export interface SelfNetItem extends ItemBase {
  readonly kind: 'selfNet';
  readonly ipProto: readonly number[] | null;
  readonly ports: readonly PortRange[];
}

/** An app grant: CapGrant rules on the destinations, plus companion rules for some caps. */
export interface CapItem extends ItemBase {
  readonly kind: 'cap';
  readonly dst: Selection;
  readonly capMap: Readonly<Record<string, unknown[]>>;
}

export interface SelfCapItem extends ItemBase {
  readonly kind: 'selfCap';
  readonly capMap: Readonly<Record<string, unknown[]>>;
}

/** A grant with `via`: delivered only to routers carrying one of the tags. */
export interface ViaItem extends ItemBase {
  readonly kind: 'via';
  /** The routers carrying one of the grant's via tags, as a selection (the index elects among them). */
  readonly via: Selection;
  readonly dst: Selection;
  readonly ipProto: readonly number[] | null;
  readonly ports: readonly PortRange[];
  readonly dstsWithPorts: readonly NetDestination[];
  readonly capMap: Readonly<Record<string, unknown[]>> | null;
}

export interface CompiledSshRule {
  readonly rule: SshRule;
  readonly src: Selection;
  readonly dst: Selection;
  /** True when dst has autogroup:self. */
  readonly selfDst: boolean;
}

export interface CompiledNodeAttr {
  readonly target: Selection;
  readonly attrs: readonly string[];
}

export interface CompiledApprover {
  readonly prefix: IPPrefix;
  readonly approvers: Selection;
}

export interface CompiledPolicy {
  readonly policy: Policy;
  readonly atoms: readonly Atom[];
  readonly items: readonly RuleItem[];
  readonly ssh: readonly CompiledSshRule[] | null;
  readonly nodeAttrs: readonly CompiledNodeAttr[];
  readonly routeApprovers: readonly CompiledApprover[];
  readonly exitApprovers: Selection;
  /** Tag -> who may apply it (resolved to users/groups/tags by the index). */
  readonly tagOwners: ReadonlyMap<string, Selection>;
  /** True when the policy has neither acls nor grants: the service's default allow-all applies. */
  readonly defaultAllowAll: boolean;
  /** Returns the Selection for a list of aliases, interning new atoms (used by tests and explain). */
  select(refs: readonly { text: string; alias: Alias }[]): Selection;
  /** Posture names any rule uses: node facts are evaluated against these. */
  readonly postureNames: readonly string[];
  /** Atoms taken from the policy compiled over (atomsOf) that this policy names nowhere. */
  readonly unusedAtoms: number;
}

/** Tailscale capabilities that imply a reversed companion grant to the sources. */
export const COMPANION_CAPS: readonly { readonly cap: string; readonly companion: string }[] = [
  { cap: 'tailscale.com/cap/drive', companion: 'tailscale.com/cap/drive-sharer' },
  { cap: 'tailscale.com/cap/relay', companion: 'tailscale.com/cap/relay-target' },
];

/**
 * `atomsOf`: a policy compiled before (the one in force); its atoms keep their ids, and atoms
 * of this text come after them. An edit that only drops selectors then has the same atoms, so
 * the index keeps every node's class (see PolicyIndex.keepsClassesUnder).
 */
export function compilePolicyText(text: string, options: ParseOptions = {}, atomsOf: CompiledPolicy | null = null): CompiledPolicy {
  return compilePolicy(parsePolicy(text, options), atomsOf);
}

export function compilePolicy(policy: Policy, atomsOf: CompiledPolicy | null = null): CompiledPolicy {
  return new Compiler(policy, atomsOf?.atoms ?? []).compile();
}

class Compiler {
  readonly #policy: Policy;
  readonly #atoms: Atom[] = [];
  readonly #atomByKey = new Map<string, Atom>();
  readonly #selections = new Map<string, Selection>();
  readonly #postureNames: string[] = [];
  #order = 0;

  /** Keys of atoms taken from atomsOf that this policy has not named (yet). */
  readonly #unnamed = new Set<string>();

  constructor(policy: Policy, atoms: readonly Atom[]) {
    this.#policy = policy;
    for (const atom of atoms) {
      this.#atom(atom.key, atom.spec);
      this.#unnamed.add(atom.key);
    }
  }

  compile(): CompiledPolicy {
    const p = this.#policy;
    const items: RuleItem[] = [];
    const defaultAllowAll = p.acls === null && p.grants === null;
    if (defaultAllowAll) {
      const origin: RuleOrigin = { section: 'default', index: 0, at: 0, path: '' };
      const src = this.select([{ text: '*', alias: { kind: 'wildcard' } }]);
      const wildcardPart = src.parts[0]!;
      items.push({ kind: 'net', order: this.#order++, origin, src, ipProto: null, dsts: [{ part: wildcardPart, ports: [ALL_PORTS], literalText: null, literalPrefixes: [] }] });
    }
    // Tailscale evaluates grants before acls when both are present.
    for (const grant of p.grants ?? []) this.#compileGrant(grant, items);
    for (const acl of p.acls ?? []) this.#compileAcl(acl, items);

    const ssh = p.ssh === null ? null : p.ssh.map((rule) => this.#compileSsh(rule));
    const nodeAttrs = p.nodeAttrs.map((na) => ({ target: this.select(na.target), attrs: na.attr }));
    const routeApprovers = p.autoApprovers.routes.map((r) => ({ prefix: r.prefix, approvers: this.select(r.approvers) }));
    const exitApprovers = this.select(p.autoApprovers.exitNode);
    const tagOwners = new Map<string, Selection>();
    for (const [tag, owners] of p.tagOwners) tagOwners.set(tag, this.select(owners));
    return {
      policy: p,
      atoms: this.#atoms,
      items,
      ssh,
      nodeAttrs,
      routeApprovers,
      exitApprovers,
      tagOwners,
      defaultAllowAll,
      select: (refs) => this.select(refs),
      postureNames: this.#postureNames,
      unusedAtoms: this.#unnamed.size,
    };
  }

  #compileAcl(acl: NonNullable<Policy['acls']>[number], items: RuleItem[]): void {
    const origin: RuleOrigin = { section: 'acls', index: acl.index, at: acl.at, path: acl.path };
    const src = this.#ruleSource(acl.src, acl.srcPosture);
    const ipProto = acl.proto === null ? null : [acl.proto];
    const isSelf = (d: AliasRef): boolean => d.alias.kind === 'autogroup' && d.alias.name === 'self';
    // The service emits non-self destinations before autogroup:self ones when the ACL names
    // anything besides autogroups; an all-autogroup ACL keeps the written order.
    const allAutogroups = acl.dst.every((d) => d.alias.kind === 'autogroup');
    const ordered = allAutogroups ? acl.dst : [...acl.dst.filter((d) => !isSelf(d)), ...acl.dst.filter(isSelf)];
    for (const d of ordered) {
      if (isSelf(d)) {
        items.push({ kind: 'selfNet', order: this.#order++, origin, src, ipProto, ports: d.ports });
      } else {
        const dstSel = this.select([d]);
        items.push({ kind: 'net', order: this.#order++, origin, src, ipProto, dsts: [this.#netDestination(dstSel.parts[0]!, d.ports)] });
      }
    }
  }

  #compileGrant(grant: NonNullable<Policy['grants']>[number], items: RuleItem[]): void {
    const origin: RuleOrigin = { section: 'grants', index: grant.index, at: grant.at, path: grant.path };
    const src = this.#ruleSource(grant.src, grant.srcPosture);
    const selfDst = grant.dst.filter((d) => d.alias.kind === 'autogroup' && d.alias.name === 'self');
    const otherDst = grant.dst.filter((d) => !(d.alias.kind === 'autogroup' && d.alias.name === 'self'));
    if (grant.src.length === 0 || grant.dst.length === 0) return;
    if (grant.via.length > 0) {
      const dst = this.select(otherDst);
      // The index selects the routers by these tags when it elects one; interned here, they are
      // among the atoms its classes are built from (a tag named nowhere else was missing).
      const via = this.select(grant.via.map((v) => ({ text: v.text, alias: { kind: 'tag', name: v.text } })));
      for (const ip of grant.ip) {
        items.push({
          kind: 'via',
          order: this.#order++,
          origin,
          src,
          via,
          dst,
          ipProto: ip.proto === null ? null : [ip.proto],
          ports: ip.ports,
          dstsWithPorts: dst.parts.map((part) => this.#netDestination(part, ip.ports)),
          capMap: null,
        });
      }
      if (grant.app !== null) {
        items.push({ kind: 'via', order: this.#order++, origin, src, via, dst, ipProto: null, ports: [], dstsWithPorts: [], capMap: grant.app });
      }
      return;
    }
    if (otherDst.length > 0) {
      const dst = this.select(otherDst);
      for (const ip of grant.ip) {
        items.push({
          kind: 'net',
          order: this.#order++,
          origin,
          src,
          ipProto: ip.proto === null ? null : [ip.proto],
          dsts: dst.parts.map((part) => this.#netDestination(part, ip.ports)),
        });
      }
      if (grant.app !== null) items.push({ kind: 'cap', order: this.#order++, origin, src, dst, capMap: grant.app });
    }
    if (selfDst.length > 0) {
      for (const ip of grant.ip) {
        items.push({ kind: 'selfNet', order: this.#order++, origin, src, ipProto: ip.proto === null ? null : [ip.proto], ports: ip.ports });
      }
      if (grant.app !== null) items.push({ kind: 'selfCap', order: this.#order++, origin, src, capMap: grant.app });
    }
  }

  #netDestination(part: SelectionPart, ports: readonly PortRange[]): NetDestination {
    if (part.kind === 'literal' && part.literal !== null) {
      const prefixes = part.literal.prefixes();
      const literalText = prefixes.length === 1 ? renderDstLiteral(prefixes[0]!) : null;
      return { part, ports, literalText, literalPrefixes: prefixes };
    }
    return { part, ports, literalText: null, literalPrefixes: [] };
  }

  #compileSsh(rule: SshRule): CompiledSshRule {
    const selfDst = rule.dst.some((d) => d.alias.kind === 'autogroup' && d.alias.name === 'self');
    return {
      rule,
      src: this.#withPostures(this.select(rule.src), rule.srcPosture),
      dst: this.select(rule.dst.filter((d) => !(d.alias.kind === 'autogroup' && d.alias.name === 'self'))),
      selfDst,
    };
  }

  /** Resolves a selector list to atoms and literal prefixes; shared by key. */
  select(refs: readonly { text: string; alias: Alias }[]): Selection {
    const key = refs.map((r) => aliasText(r.alias)).join('\u0000');
    const cached = this.#selections.get(key);
    if (cached !== undefined) return cached;
    const parts: SelectionPart[] = [];
    const atoms = new Set<number>();
    const literal = new IPSetBuilder();
    let wildcard = false;
    let dangerAll = false;
    let internet = false;
    let self = false;
    for (const ref of refs) {
      const part = this.#part(ref.alias, aliasText(ref.alias));
      parts.push(part);
      switch (part.kind) {
        case 'wildcard':
          wildcard = true;
          break;
        case 'dangerAll':
          dangerAll = true;
          break;
        case 'internet':
          internet = true;
          break;
        case 'self':
          self = true;
          break;
        case 'atom':
          atoms.add(part.atom!);
          break;
        case 'literal':
          if (part.atom !== null) atoms.add(part.atom);
          literal.addSet(part.literal!);
          break;
      }
    }
    const selection: Selection = {
      key,
      atoms: [...atoms].sort((a, b) => a - b),
      literal: literal.build(),
      wildcard,
      dangerAll,
      internet,
      self,
      parts,
      postures: [],
    };
    this.#selections.set(key, selection);
    return selection;
  }

  /** The same selection restricted to devices meeting one of `postures`. */
  #withPostures(sel: Selection, postures: readonly string[]): Selection {
    if (postures.length === 0) return sel;
    const key = `${sel.key}\u0001posture:${[...postures].sort().join(',')}`;
    const cached = this.#selections.get(key);
    if (cached !== undefined) return cached;
    for (const p of postures) if (!this.#postureNames.includes(p)) this.#postureNames.push(p);
    const restricted: Selection = { ...sel, key, postures: [...postures] };
    this.#selections.set(key, restricted);
    return restricted;
  }

  #ruleSource(refs: readonly AliasRef[], srcPosture: readonly string[]): Selection {
    return this.#withPostures(this.select(refs), srcPosture.length > 0 ? srcPosture : this.#policy.defaultSrcPosture);
  }

  #part(alias: Alias, text: string): SelectionPart {
    switch (alias.kind) {
      case 'wildcard':
        return { text, atom: null, literal: null, kind: 'wildcard' };
      case 'autogroup':
        switch (alias.name) {
          case 'danger-all':
            return { text, atom: null, literal: null, kind: 'dangerAll' };
          case 'internet':
            return { text, atom: null, literal: null, kind: 'internet' };
          case 'self':
            return { text, atom: null, literal: null, kind: 'self' };
          case 'member':
            return this.#atomPart(text, 'autogroup:member', { kind: 'member' });
          case 'tagged':
            return this.#atomPart(text, 'autogroup:tagged', { kind: 'tagged' });
          default:
            if (ROLE_AUTOGROUPS.has(alias.name)) return this.#atomPart(text, `role:${alias.name}`, { kind: 'role', role: alias.name });
            // autogroup:shared and nonroot select no devices of this tailnet.
            return { text, atom: null, literal: IPSet.EMPTY, kind: 'literal' };
        }
      case 'user':
        return this.#atomPart(text, `user:${alias.login.toLowerCase()}`, { kind: 'users', logins: [alias.login] });
      case 'userDomain':
        return this.#atomPart(text, `domain:${alias.domain.toLowerCase()}`, { kind: 'userDomain', domain: alias.domain });
      case 'group': {
        if (!this.#policy.groups.has(alias.name) && isSyncedGroupName(alias.name)) {
          const group = alias.name.slice('group:'.length).toLowerCase();
          return this.#atomPart(text, `synced:${group}`, { kind: 'syncedGroup', group });
        }
        const members = this.#policy.groups.get(alias.name) ?? [];
        return this.#atomPart(text, `group:${members.map((m) => m.toLowerCase()).sort().join(',')}`, { kind: 'users', logins: members });
      }
      case 'tag':
        return this.#atomPart(text, `tag:${alias.name}`, { kind: 'tag', tag: alias.name });
      case 'host': {
        const host = this.#policy.hosts.get(alias.name);
        return this.#literalPart(text, host === undefined ? IPSet.EMPTY : IPSet.of(host.prefix));
      }
      case 'ipset': {
        const members = this.#policy.ipsets.get(alias.name) ?? [];
        const add = new IPSetBuilder();
        const remove = new IPSetBuilder();
        for (const m of members) (m.remove ? remove : add).addPrefix(m.prefix);
        return this.#literalPart(text, add.build().difference(remove.build()));
      }
      case 'prefix':
        return this.#literalPart(text, IPSet.of(alias.prefix));
    }
  }

  #atomPart(text: string, key: string, spec: AtomSpec): SelectionPart {
    return { text, atom: this.#atom(key, spec).id, literal: null, kind: 'atom' };
  }

  #literalPart(text: string, set: IPSet): SelectionPart {
    // Literals are atoms too: a node whose address lies inside is a member of the selector.
    const atom = this.#atom(`literal:${set.toStrings().join(',')}`, { kind: 'literal', set });
    return { text, atom: atom.id, literal: set, kind: 'literal' };
  }

  #atom(key: string, spec: AtomSpec): Atom {
    this.#unnamed.delete(key);
    let atom = this.#atomByKey.get(key);
    if (atom === undefined) {
      atom = { id: this.#atoms.length, key, spec };
      this.#atoms.push(atom);
      this.#atomByKey.set(key, atom);
    }
    return atom;
  }
}

/** A literal destination as the service writes it in DstPorts: addresses bare, prefixes as CIDR. */
export function renderDstLiteral(prefix: IPPrefix): string {
  const full = prefix.addr.family === 4 ? 32 : 128;
  return prefix.bits === full ? formatPrefix(prefix).slice(0, formatPrefix(prefix).lastIndexOf('/')) : formatPrefix(prefix);
}
