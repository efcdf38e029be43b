// Groups pushed by a SCIM client (Okta, Entra ID). The group's members are user ids; what a
// membership means for the policy (the users' synced groups) is kept in step by the state part,
// in the same transaction.
import { randomUUID } from 'node:crypto';
import type { TailnetId, UserId } from '../model/index.js';
import { StoreErrors, storeError } from './errors.js';
import { mapViolations, notFound, type RepoContext } from './repo-context.js';
import type { ScimGroupRow } from './schema.js';
import type { ScimGroup, ScimGroupRepo } from './types.js';

function groupFromRow(row: ScimGroupRow): ScimGroup {
  const members: unknown = JSON.parse(row.members);
  return {
    id: row.id,
    tailnetId: row.tailnet_id as TailnetId,
    displayName: row.display_name,
    externalId: row.external_id,
    members: Array.isArray(members) ? members.map((m) => Number(m) as UserId) : [],
    createdAt: new Date(Number(row.created_at)),
  };
}

export class SqlScimGroupRepo implements ScimGroupRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async create(group: { tailnetId: TailnetId; displayName: string; externalId: string | null; members: readonly UserId[] }): Promise<ScimGroup> {
    const id = randomUUID();
    await mapViolations(
      this.#ctx.db.insertInto('scim_groups').values({
        id,
        tailnet_id: group.tailnetId,
        display_name: group.displayName,
        external_id: group.externalId,
        members: JSON.stringify([...new Set(group.members)]),
        created_at: this.#ctx.nowMs(),
      }).execute(),
      { unique: { scim_groups_tailnet_name_key: () => storeError(StoreErrors.scimGroupExists, `tailnet ${group.tailnetId}: a SCIM group named "${group.displayName}" already exists`) } },
    );
    const created = await this.get(group.tailnetId, id);
    if (created === undefined) throw notFound(`SCIM group ${id}`);
    return created;
  }

  async get(tailnetId: TailnetId, id: string): Promise<ScimGroup | undefined> {
    const row = await this.#ctx.db.selectFrom('scim_groups').selectAll().where('tailnet_id', '=', tailnetId).where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : groupFromRow(row);
  }

  async list(tailnetId: TailnetId): Promise<ScimGroup[]> {
    const rows = await this.#ctx.db.selectFrom('scim_groups').selectAll().where('tailnet_id', '=', tailnetId).orderBy('display_name').execute();
    return rows.map(groupFromRow);
  }

  async update(tailnetId: TailnetId, id: string, patch: { displayName?: string; externalId?: string | null; members?: readonly UserId[] }): Promise<ScimGroup> {
    const values: { display_name?: string; external_id?: string | null; members?: string } = {};
    if (patch.displayName !== undefined) values.display_name = patch.displayName;
    if (patch.externalId !== undefined) values.external_id = patch.externalId;
    if (patch.members !== undefined) values.members = JSON.stringify([...new Set(patch.members)]);
    if (Object.keys(values).length > 0) {
      const result = await mapViolations(
        this.#ctx.db.updateTable('scim_groups').set(values).where('tailnet_id', '=', tailnetId).where('id', '=', id).executeTakeFirst(),
        { unique: { scim_groups_tailnet_name_key: () => storeError(StoreErrors.scimGroupExists, `tailnet ${tailnetId}: a SCIM group named "${patch.displayName ?? ''}" already exists`) } },
      );
      if (result.numUpdatedRows === 0n) throw notFound(`SCIM group ${id}`);
    }
    const group = await this.get(tailnetId, id);
    if (group === undefined) throw notFound(`SCIM group ${id}`);
    return group;
  }

  async delete(tailnetId: TailnetId, id: string): Promise<void> {
    const result = await this.#ctx.db.deleteFrom('scim_groups').where('tailnet_id', '=', tailnetId).where('id', '=', id).executeTakeFirst();
    if (result.numDeletedRows === 0n) throw notFound(`SCIM group ${id}`);
  }
}
