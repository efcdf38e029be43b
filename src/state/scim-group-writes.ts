// A tailnet's SCIM groups: reading the group rows, and writing them together with every member's
// synced groups and the audit entry in one transaction, then publishing each changed user.
import type { UserId, User } from '../model/index.js';
import { syncedGroupNames } from '../model/index.js';
import type { ScimGroup, StoreTx } from '../store/types.js';
import type { Actor } from './actor.js';
import type { TailnetInternals } from './tailnet-internals.js';

export class ScimGroupWrites {
  readonly #state: TailnetInternals;

  constructor(state: TailnetInternals) {
    this.#state = state;
  }

  list(): Promise<ScimGroup[]> {
    return this.#state.store.read.scimGroups.list(this.#state.tailnetId());
  }

  get(id: string): Promise<ScimGroup | undefined> {
    return this.#state.store.read.scimGroups.get(this.#state.tailnetId(), id);
  }

  create(input: { displayName: string; externalId: string | null; members: readonly UserId[] }, actor: Actor): Promise<ScimGroup> {
    return this.#write(actor, 'scim.group.create', input.members, (tx) => tx.scimGroups.create({ ...input, tailnetId: this.#state.tailnetId() }));
  }

  update(id: string, patch: { displayName?: string; externalId?: string | null; members?: readonly UserId[] }, actor: Actor): Promise<ScimGroup> {
    return this.#write(actor, 'scim.group.update', patch.members ?? [], (tx) => tx.scimGroups.update(this.#state.tailnetId(), id, patch));
  }

  delete(id: string, actor: Actor): Promise<void> {
    return this.#write(actor, 'scim.group.delete', [], (tx) => tx.scimGroups.delete(this.#state.tailnetId(), id));
  }

  /**
   * A change of SCIM groups: the group rows, every member's synced groups and the audit entry in
   * one transaction; then each user whose groups changed is published as changed (the policy
   * index answers with a delta for their nodes).
   */
  #write<T>(actor: Actor, action: string, members: readonly UserId[], change: (tx: StoreTx) => Promise<T>): Promise<T> {
    const state = this.#state;
    return state.write(async () => {
      for (const member of members) state.requireUser(member);
      const changed: Array<{ before: User; after: User }> = [];
      const result = await state.store.transaction(async (tx) => {
        const value = await change(tx);
        const groupsOf = new Map<UserId, string[]>();
        for (const group of await tx.scimGroups.list(state.tailnetId())) {
          for (const member of group.members) {
            const user = state.users.get(member);
            if (user === undefined) continue;
            const names = groupsOf.get(member) ?? [];
            names.push(...syncedGroupNames([group.displayName], user.email));
            groupsOf.set(member, names);
          }
        }
        for (const user of state.users.values()) {
          const groups = [...new Set(groupsOf.get(user.id) ?? [])].sort();
          if (groups.join('\n') === user.scimGroups.join('\n')) continue;
          changed.push({ before: user, after: await tx.users.update(user.id, { scimGroups: groups }) });
        }
        await state.audit(tx, actor, action, 'scim-groups', {
          users: changed.map(({ after }) => ({ user: after.id, groups: after.scimGroups })),
          ...(typeof value === 'object' && value !== null && 'id' in value ? { group: (value as { id: unknown }).id } : {}),
        });
        return value;
      });
      for (const { before, after } of changed) {
        state.putUser(after);
        state.publish({ kind: 'userChanged', before, after });
      }
      return result;
    });
  }
}
