// Users: unique name per tailnet. A user who still owns nodes cannot be deleted; their
// pre-auth keys go with them.
import type { TailnetId, User, UserId } from '../model/index.js';
import { StoreErrors, storeError } from './errors.js';
import { insertRow, mapViolations, notFound, updateRow, type RepoContext } from './repo-context.js';
import { dbBool, userFromRow } from './rows.js';
import type { NewUser, UserPatch, UserRepo } from './types.js';

export class SqlUserRepo implements UserRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async create(user: NewUser): Promise<User> {
    const row = await mapViolations(
      insertRow(this.#ctx, 'users', {
        tailnet_id: user.tailnetId,
        name: user.name,
        display_name: user.displayName ?? '',
        email: user.email ?? '',
        role: user.role ?? 'member',
        oidc_issuer: user.oidc?.issuer ?? null,
        oidc_subject: user.oidc?.subject ?? null,
        picture_url: user.pictureUrl ?? '',
        oidc_groups: JSON.stringify(user.oidcGroups ?? []),
        scim_groups: JSON.stringify(user.scimGroups ?? []),
        active: dbBool(user.active ?? true),
        scim_external_id: user.scimExternalId ?? null,
        created_at: this.#ctx.nowMs(),
      }),
      {
        unique: {
          users_tailnet_name_key: () => storeError(StoreErrors.userExists, `tailnet ${user.tailnetId}: user "${user.name}" already exists`),
          users_tailnet_oidc_key: () => storeError(StoreErrors.userExists, `tailnet ${user.tailnetId}: another user already signs in as ${user.oidc?.issuer ?? ''} ${user.oidc?.subject ?? ''}`),
        },
        foreignKey: () => storeError(StoreErrors.referenceMissing, `tailnet ${user.tailnetId} does not exist`),
      },
    );
    this.#ctx.changes?.record('user', row.id);
    return userFromRow(row);
  }

  async get(id: UserId): Promise<User | undefined> {
    const row = await this.#ctx.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : userFromRow(row);
  }

  async getByName(tailnetId: TailnetId, name: string): Promise<User | undefined> {
    const row = await this.#ctx.db.selectFrom('users').selectAll()
      .where('tailnet_id', '=', tailnetId).where('name', '=', name).executeTakeFirst();
    return row === undefined ? undefined : userFromRow(row);
  }

  async list(tailnetId: TailnetId): Promise<User[]> {
    const rows = await this.#ctx.db.selectFrom('users').selectAll().where('tailnet_id', '=', tailnetId).orderBy('id').execute();
    return rows.map(userFromRow);
  }

  async getByOidc(tailnetId: TailnetId, issuer: string, subject: string): Promise<User | undefined> {
    const row = await this.#ctx.db.selectFrom('users').selectAll()
      .where('tailnet_id', '=', tailnetId).where('oidc_issuer', '=', issuer).where('oidc_subject', '=', subject).executeTakeFirst();
    return row === undefined ? undefined : userFromRow(row);
  }

  async update(id: UserId, patch: UserPatch): Promise<User> {
    const values: {
      name?: string; display_name?: string; email?: string; role?: string; oidc_issuer?: string | null; oidc_subject?: string | null;
      picture_url?: string; oidc_groups?: string; scim_groups?: string; active?: number; scim_external_id?: string | null;
    } = {};
    if (patch.name !== undefined) values.name = patch.name;
    if (patch.displayName !== undefined) values.display_name = patch.displayName;
    if (patch.email !== undefined) values.email = patch.email;
    if (patch.role !== undefined) values.role = patch.role;
    if (patch.oidc !== undefined) {
      values.oidc_issuer = patch.oidc?.issuer ?? null;
      values.oidc_subject = patch.oidc?.subject ?? null;
    }
    if (patch.pictureUrl !== undefined) values.picture_url = patch.pictureUrl;
    if (patch.oidcGroups !== undefined) values.oidc_groups = JSON.stringify(patch.oidcGroups);
    if (patch.scimGroups !== undefined) values.scim_groups = JSON.stringify(patch.scimGroups);
    if (patch.active !== undefined) values.active = dbBool(patch.active);
    if (patch.scimExternalId !== undefined) values.scim_external_id = patch.scimExternalId;
    if (Object.keys(values).length === 0) {
      const user = await this.get(id);
      if (user === undefined) throw notFound(`user ${id}`);
      return user;
    }
    const row = await mapViolations(
      updateRow(this.#ctx, 'users', id, values),
      {
        unique: {
          users_tailnet_name_key: () => storeError(StoreErrors.userExists, `user ${id}: another user of the tailnet is already named "${patch.name ?? ''}"`),
          users_tailnet_oidc_key: () => storeError(StoreErrors.userExists, `user ${id}: another user of the tailnet already signs in as ${patch.oidc?.issuer ?? ''} ${patch.oidc?.subject ?? ''}`),
        },
      },
    );
    if (row === undefined) throw notFound(`user ${id}`);
    this.#ctx.changes?.record('user', id);
    return userFromRow(row);
  }

  async delete(id: UserId): Promise<void> {
    const result = await mapViolations(
      this.#ctx.db.deleteFrom('users').where('id', '=', id).executeTakeFirst(),
      { foreignKey: () => storeError(StoreErrors.userHasNodes, `user ${id} still owns nodes; delete them or move them to another user first`) },
    );
    if (result.numDeletedRows === 0n) throw notFound(`user ${id}`);
    this.#ctx.changes?.record('user', id);
  }
}
