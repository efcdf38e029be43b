// Users: unique name per tailnet. A user who still owns nodes cannot be deleted; their
// pre-auth keys go with them.
import type { TailnetId, User, UserId } from '../model/index.js';
import { StoreErrors, storeError } from './errors.js';
import { insertRow, mapViolations, notFound, updateRow, type RepoContext } from './repo-context.js';
import { userFromRow } from './rows.js';
import type { UserTable } from './schema.js';
import type { NewUser, UserRepo } from './types.js';

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
        created_at: this.#ctx.nowMs(),
      }),
      {
        unique: { users_tailnet_name_key: () => storeError(StoreErrors.userExists, `tailnet ${user.tailnetId}: user "${user.name}" already exists`) },
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

  async update(id: UserId, patch: Partial<Pick<User, 'name' | 'displayName' | 'email' | 'role'>>): Promise<User> {
    const values: { name?: string; display_name?: string; email?: string; role?: string } = {};
    if (patch.name !== undefined) values.name = patch.name;
    if (patch.displayName !== undefined) values.display_name = patch.displayName;
    if (patch.email !== undefined) values.email = patch.email;
    if (patch.role !== undefined) values.role = patch.role;
    if (Object.keys(values).length === 0) {
      const user = await this.get(id);
      if (user === undefined) throw notFound(`user ${id}`);
      return user;
    }
    const row = await mapViolations(
      updateRow(this.#ctx, 'users', id, values),
      { unique: { users_tailnet_name_key: () => storeError(StoreErrors.userExists, `user ${id}: another user of the tailnet is already named "${patch.name ?? ''}"`) } },
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
