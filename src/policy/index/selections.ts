// Class binding: a policy's selections bound to this tailnet's identity classes (Resolved), the
// rule items they feed, the atom plan that classifies a node or user, the tailnet's display
// name and domains, and tag-ownership decisions.
import { IPSet } from '../../util/ip-set.js';
import type { Atom, CompiledPolicy, RuleItem, Selection } from '../compile.js';
import type { TailnetSettings, UserFacts } from '../facts.js';
import type { Bits } from './bits.js';
import { emailDomain, isUserAtom } from './records.js';
import type { SrcList } from './src-list.js';

/**
 * A selection bound to this tailnet. The address set is built only when something asks for it
 * (routers, tests, explain): a tailnet without subnet routers never pays for it.
 */
export class Resolved {
  readonly sel: Selection;
  /** Classes whose identity matches (atoms; every class for `*`). */
  readonly identity: Bits;
  /** Classes in the set as packet endpoints: identity plus routers whose routes overlap it. */
  members: Bits;
  readonly #addresses: () => IPSet;
  /** The tailnet's address epoch (bumped by every join and leave) the cached set was built at. */
  readonly #epoch: () => number;
  #ipSet: IPSet | null = null;
  #builtAt = -1;

  constructor(sel: Selection, identity: Bits, addresses: () => IPSet, epoch: () => number) {
    this.sel = sel;
    this.identity = identity;
    this.members = identity;
    this.#addresses = addresses;
    this.#epoch = epoch;
  }

  /** Everything the selection covers as an address set. */
  get ipSet(): IPSet {
    const epoch = this.#epoch();
    if (this.#ipSet === null || this.#builtAt !== epoch) {
      this.#ipSet = this.#addresses();
      this.#builtAt = epoch;
    }
    return this.#ipSet;
  }
}

export interface ItemInfo {
  readonly item: RuleItem;
  readonly src: Resolved;
  /** The rendered SrcIPs, shared by every item with the same source selection. */
  readonly list: SrcList;
  /** Classes the item delivers to (#dstMembers), kept current as classes are added. */
  readonly dst: Bits;
}

/** The policy's atoms as classification needs them. */
export interface AtomPlan {
  readonly tagAtoms: ReadonlyMap<string, readonly number[]>;
  readonly taggedAtom: number;
  readonly literalAtoms: readonly Atom[];
  /** `users` atoms (users and groups) by lower-case login. */
  readonly loginAtoms: ReadonlyMap<string, readonly number[]>;
  /** The other user-kind atoms (domains, autogroup:member, roles), tested per user. */
  readonly otherUserAtoms: readonly Atom[];
  /** The union of the literal atoms: most nodes are outside it and skip the per-atom test. */
  readonly anyLiteral: IPSet;
}

export function atomPlan(compiled: CompiledPolicy): AtomPlan {
  const tagAtoms = new Map<string, number[]>();
  let taggedAtom = -1;
  const literalAtoms: Atom[] = [];
  const loginAtoms = new Map<string, number[]>();
  const otherUserAtoms: Atom[] = [];
  let anyLiteral = IPSet.EMPTY;
  for (const atom of compiled.atoms) {
    const spec = atom.spec;
    if (spec.kind === 'users') {
      for (const login of new Set(spec.logins.map((l) => l.trim().toLowerCase()))) {
        const list = loginAtoms.get(login);
        if (list === undefined) loginAtoms.set(login, [atom.id]);
        else list.push(atom.id);
      }
    } else if (isUserAtom(spec)) otherUserAtoms.push(atom);
    if (atom.spec.kind === 'tag') {
      const list = tagAtoms.get(atom.spec.tag) ?? [];
      list.push(atom.id);
      tagAtoms.set(atom.spec.tag, list);
    } else if (atom.spec.kind === 'tagged') taggedAtom = atom.id;
    else if (atom.spec.kind === 'literal') {
      literalAtoms.push(atom);
      anyLiteral = anyLiteral.union(atom.spec.set);
    }
  }
  return { tagAtoms, taggedAtom, literalAtoms, loginAtoms, otherUserAtoms, anyLiteral };
}

/** The tailnet's display name and domains, from settings or its owner. */
export function tailnetNames(settings: TailnetSettings, users: readonly UserFacts[]): { displayName: string; domains: ReadonlySet<string> | null } {
  const owner = users.find((u) => u.role === 'owner');
  const displayName = settings.displayName ?? owner?.email ?? users[0]?.email ?? '';
  const domains = settings.domains ?? (owner !== undefined ? [emailDomain(owner.email)] : null);
  return { displayName, domains: domains === null ? null : new Set(domains.map((d) => d.toLowerCase())) };
}

/** Who asks to apply tags: a user (interactive login, auth key owner) or a tagged node's tags. */
export type TagOwnerContext = { readonly userId: number } | { readonly tags: readonly string[] };

export interface TagDecision {
  readonly allowed: boolean;
  readonly denied: readonly { readonly tag: string; readonly reason: string }[];
}

/**
 * What a selection's source list is made of, by atom ids (under one class binding they keep
 * their meaning): its key is selector text, which a changed host or group may keep.
 */
export function selectionShape(sel: Selection): string {
  return JSON.stringify([sel.wildcard, sel.dangerAll, sel.postures, sel.parts.map((p) => [p.kind, p.atom, p.kind === 'literal' || p.kind === 'atom' ? null : p.text])]);
}
