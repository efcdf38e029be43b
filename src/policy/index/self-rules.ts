// autogroup:self rules: per user, the rules that let a user's devices reach each other
// (sources narrowed to the user's own devices), built on first use and dropped when the user's
// devices change, with a version per user that changes whenever the user's rules (or their
// order among the class rules) do.
//
// What it reads is SelfRulesHost (users, classes, rule items, the clock) and, when it
// settles, the class templates and merged-rule positions before and after (ClassRules).
import { SELF, companionRules, mergeKey, placement, type DstEntry, type TemplateRule } from './filter-template.js';
import { byNodeId, nodeTexts } from './node-lists.js';
import type { IdentityClass, UserRec } from './records.js';
import type { ItemInfo } from './selections.js';
import { srcKey, type SrcRef } from './src-list.js';

/** What the self rules read from the rest of the index (always the current state). */
export interface SelfRulesHost {
  readonly classes: readonly IdentityClass[];
  readonly users: ReadonlyMap<number, UserRec>;
  readonly items: readonly ItemInfo[];
  tick(): number;
}

/** The class side of a settle: class templates, and merged-rule positions before and after. */
export interface ClassRules {
  templateOf(classId: number): readonly TemplateRule[] | null | undefined;
  readonly globalFirstBefore: ReadonlyMap<string, number>;
  readonly globalFirst: ReadonlyMap<string, number>;
}

export class SelfRules {
  readonly #host: SelfRulesHost;
  /** Per user: the autogroup:self rules (made on first use). */
  #templates = new Map<number, TemplateRule[]>();
  /** Per user: a counter value that changes whenever the user's autogroup:self rules do. */
  #versions = new Map<number, number>();
  /** Users whose cached rules have a ports rule with this merge key. */
  #keyUsers = new Map<string, Set<number>>();
  #has: boolean | null = null;

  constructor(host: SelfRulesHost) {
    this.#host = host;
  }

  /** Takes over another index's rules (after a rebuild); versions start anew. */
  adopt(other: SelfRules): void {
    this.#templates = other.#templates;
    this.#keyUsers = other.#keyUsers;
    this.#versions = new Map();
    this.#has = other.#has;
  }

  /** The current version of a user's rules (part of filterKey). */
  versionOf(userId: number): number {
    return this.#versions.get(userId) ?? 0;
  }

  /**
   * After an update: users in `selfUsers` (user -> signature before) whose rules changed, and
   * users whose self rules interleave with class rules whose merged position moved (`moved`
   * keys; `placed` classes), get a new version and their nodes go in `filterChanged`.
   */
  settle(selfUsers: ReadonlyMap<number, string>, classRules: ClassRules, moved: ReadonlySet<string>, placed: ReadonlySet<number>, filterChanged: Set<number>): void {
    const host = this.#host;
    const selfMoved = new Set<number>();
    for (const [uid, sig] of selfUsers) {
      this.#drop(uid);
      const user = host.users.get(uid);
      if (user !== undefined && this.signature(user) !== sig) selfMoved.add(uid);
    }
    // A merged-rule position that moved can reorder class rules among autogroup:self rules.
    if (moved.size > 0 && this.has()) {
      const users = new Set<number>();
      for (const key of moved) for (const uid of this.#keyUsers.get(key) ?? []) users.add(uid);
      for (const c of placed) for (const n of host.classes[c]!.nodes) if (n.user !== null) users.add(n.user.id);
      const memo = new Map<string, boolean>();
      for (const uid of users) {
        if (selfMoved.has(uid)) continue;
        const user = host.users.get(uid);
        const self = user === undefined ? [] : this.rulesOf(user);
        if (self.length === 0) continue;
        for (const n of user!.nodes) {
          const key = `${n.classId}|${uid}`;
          let reordered = memo.get(key);
          if (reordered === undefined) {
            const rules = [...(classRules.templateOf(n.classId) ?? []), ...self].sort((a, b) => a.order - b.order);
            memo.set(key, (reordered = placement(rules, classRules.globalFirstBefore) !== placement(rules, classRules.globalFirst)));
          }
          if (reordered) {
            filterChanged.add(n.id);
            this.#versions.set(uid, host.tick());
          }
        }
      }
    }
    for (const uid of selfMoved) {
      this.#versions.set(uid, host.tick());
      for (const n of host.users.get(uid)?.nodes ?? []) filterChanged.add(n.id);
    }
  }

  #drop(uid: number): void {
    const rules = this.#templates.get(uid);
    if (rules === undefined) return;
    this.#templates.delete(uid);
    for (const r of rules) if (r.kind === 'ports') this.#keyUsers.get(mergeKey(r.src.key, r.proto))?.delete(uid);
  }

  /** The user's autogroup:self rules with their contents, for comparison. */
  signature(user: UserRec): string {
    return JSON.stringify(this.rulesOf(user).map((r) => [r.order, r.src.strings, r.kind === 'ports' ? [r.proto, r.entries] : r.grants]));
  }

  /** autogroup:self rules for one user: sources narrowed to the user's own devices. */
  rulesOf(user: UserRec): TemplateRule[] {
    const cached = this.#templates.get(user.id);
    if (cached !== undefined) return cached;
    const out: TemplateRule[] = [];
    const userNodes = [...user.nodes].sort(byNodeId);
    const userAddrs = nodeTexts(userNodes);
    for (const info of this.#host.items) {
      const item = info.item;
      if (item.kind !== 'selfNet' && item.kind !== 'selfCap') continue;
      const srcNodes = userNodes.filter((n) => info.src.members.has(n.classId));
      if (srcNodes.length === 0) continue;
      const strings = nodeTexts(srcNodes);
      const src: SrcRef = { strings, key: srcKey(strings, null) };
      const order = item.order * 8;
      if (item.kind === 'selfNet') {
        const entries: DstEntry[] = [];
        for (const m of userNodes) {
          for (const ports of item.ports) {
            if (m.v4Text !== null) entries.push({ ip: m.v4Text, ports });
            if (m.v6Text !== null) entries.push({ ip: m.v6Text, ports });
          }
        }
        out.push({ kind: 'ports', order, src, proto: item.ipProto, entries });
      } else {
        out.push({ kind: 'cap', order, src, grants: [{ dsts: SELF, capMap: item.capMap }] });
        companionRules(item.capMap, { strings: userAddrs, key: srcKey(userAddrs, null) }, order, out);
      }
    }
    this.#templates.set(user.id, out);
    for (const r of out) {
      if (r.kind !== 'ports') continue;
      const key = mergeKey(r.src.key, r.proto);
      let users = this.#keyUsers.get(key);
      if (users === undefined) this.#keyUsers.set(key, (users = new Set()));
      users.add(user.id);
    }
    return out;
  }

  /** Whether the policy has autogroup:self rules at all. */
  has(): boolean {
    if (this.#has === null) this.#has = this.#host.items.some((i) => i.item.kind === 'selfNet' || i.item.kind === 'selfCap');
    return this.#has;
  }
}
