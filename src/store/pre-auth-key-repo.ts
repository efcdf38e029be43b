// Pre-auth keys. Only the prefix (to find the row) and a SHA-256 of the key are stored.
// Expiry, revocation and single use are judged by the registration code, which calls markUsed()
// inside its transaction and checks the returned usedCount: on PostgreSQL two concurrent
// registrations with one single-use key serialise on the row, and the second sees usedCount 2.
import type { PreAuthKey, PreAuthKeyId, TailnetId, UserId } from '../model/index.js';
import { StoreErrors, storeError } from './errors.js';
import { insertRow, mapViolations, notFound, type RepoContext } from './repo-context.js';
import { dbBool, preAuthKeyFromRow } from './rows.js';
import { hashKey, headscaleLegacyKeyPrefix, keyMatchesHash, newPreAuthKey, preAuthKeyPrefix } from './secrets.js';
import type { ImportedPreAuthKey, NewPreAuthKey, PreAuthKeyRepo } from './types.js';

export class SqlPreAuthKeyRepo implements PreAuthKeyRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async create(key: NewPreAuthKey): Promise<{ key: PreAuthKey; secret: string }> {
    const generated = newPreAuthKey();
    const row = await mapViolations(
      insertRow(this.#ctx, 'pre_auth_keys', {
        tailnet_id: key.tailnetId,
        user_id: key.userId,
        prefix: generated.prefix,
        hash: generated.hash,
        reusable: dbBool(key.reusable),
        ephemeral: dbBool(key.ephemeral),
        tags: JSON.stringify(key.tags),
        expires_at: key.expiresAt === null ? null : key.expiresAt.getTime(),
        used_count: 0,
        created_at: this.#ctx.nowMs(),
        revoked_at: null,
        pre_approved: dbBool(key.preApproved ?? false),
        description: key.description ?? '',
      }),
      {
        foreignKey: () => storeError(
          StoreErrors.referenceMissing,
          `pre-auth key: tailnet ${key.tailnetId}${key.userId === null ? '' : ` or user ${key.userId}`} does not exist`,
        ),
      },
    );
    return { key: preAuthKeyFromRow(row), secret: generated.text };
  }

  async createImported(key: ImportedPreAuthKey): Promise<PreAuthKey> {
    const prefix = headscaleLegacyKeyPrefix(key.secret);
    if (prefix === undefined) throw storeError(StoreErrors.invalidValue, 'imported pre-auth key: not a headscale key of 48 hex digits');
    const row = await mapViolations(
      insertRow(this.#ctx, 'pre_auth_keys', {
        tailnet_id: key.tailnetId,
        user_id: key.userId,
        prefix,
        hash: hashKey(key.secret),
        reusable: dbBool(key.reusable),
        ephemeral: dbBool(key.ephemeral),
        tags: JSON.stringify(key.tags),
        expires_at: key.expiresAt === null ? null : key.expiresAt.getTime(),
        used_count: key.usedCount,
        created_at: key.createdAt?.getTime() ?? this.#ctx.nowMs(),
        revoked_at: null,
      }),
      {
        unique: { pre_auth_keys_prefix_key: () => storeError(StoreErrors.conflict, `imported pre-auth key ${prefix}: a key with this prefix already exists`) },
        foreignKey: () => storeError(
          StoreErrors.referenceMissing,
          `pre-auth key: tailnet ${key.tailnetId}${key.userId === null ? '' : ` or user ${key.userId}`} does not exist`,
        ),
      },
    );
    return preAuthKeyFromRow(row);
  }

  async getByPrefix(prefix: string): Promise<PreAuthKey | undefined> {
    const row = await this.#ctx.db.selectFrom('pre_auth_keys').selectAll().where('prefix', '=', prefix).executeTakeFirst();
    return row === undefined ? undefined : preAuthKeyFromRow(row);
  }

  async get(id: PreAuthKeyId): Promise<PreAuthKey | undefined> {
    const row = await this.#ctx.db.selectFrom('pre_auth_keys').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : preAuthKeyFromRow(row);
  }

  async findBySecret(secret: string): Promise<PreAuthKey | undefined> {
    const prefix = preAuthKeyPrefix(secret);
    if (prefix === undefined) return undefined;
    const row = await this.#ctx.db.selectFrom('pre_auth_keys').selectAll().where('prefix', '=', prefix).executeTakeFirst();
    if (row === undefined || !keyMatchesHash(secret, row.hash)) return undefined;
    return preAuthKeyFromRow(row);
  }

  async list(tailnetId: TailnetId, userId?: UserId): Promise<PreAuthKey[]> {
    let query = this.#ctx.db.selectFrom('pre_auth_keys').selectAll().where('tailnet_id', '=', tailnetId);
    if (userId !== undefined) query = query.where('user_id', '=', userId);
    const rows = await query.orderBy('id').execute();
    return rows.map(preAuthKeyFromRow);
  }

  async markUsed(id: PreAuthKeyId): Promise<PreAuthKey> {
    const row = await this.#ctx.db.updateTable('pre_auth_keys')
      .set((eb) => ({ used_count: eb('used_count', '+', 1) }))
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (row === undefined) throw notFound(`pre-auth key ${id}`);
    return preAuthKeyFromRow(row);
  }

  async revoke(id: PreAuthKeyId): Promise<PreAuthKey> {
    // Revoking twice keeps the first time.
    const row = await this.#ctx.db.updateTable('pre_auth_keys')
      .set((eb) => ({ revoked_at: eb.fn.coalesce('revoked_at', eb.val(this.#ctx.nowMs())) }))
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (row === undefined) throw notFound(`pre-auth key ${id}`);
    return preAuthKeyFromRow(row);
  }
}
