// Admin API keys, server-wide. One lookup per API call: an indexed read by prefix and a
// constant-time compare of SHA-256 hashes. Expiry and revocation are judged by the caller,
// which must tell "expired" from "unknown".
import type { ApiKey, ApiKeyId } from '../model/index.js';
import { insertRow, notFound, type RepoContext } from './repo-context.js';
import { apiKeyFromRow } from './rows.js';
import { apiKeyPrefix, keyMatchesHash, newApiKey, normaliseApiKeyPrefix } from './secrets.js';
import type { ApiKeyRepo } from './types.js';

export class SqlApiKeyRepo implements ApiKeyRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async create(expiresAt: Date | null): Promise<{ key: ApiKey; secret: string }> {
    const generated = newApiKey();
    const row = await insertRow(this.#ctx, 'api_keys', {
      prefix: generated.prefix,
      hash: generated.hash,
      expires_at: expiresAt === null ? null : expiresAt.getTime(),
      last_used_at: null,
      created_at: this.#ctx.nowMs(),
      revoked_at: null,
    });
    return { key: apiKeyFromRow(row), secret: generated.text };
  }

  async get(id: ApiKeyId): Promise<ApiKey | undefined> {
    const row = await this.#ctx.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : apiKeyFromRow(row);
  }

  /** Accepts the bare prefix, `hwk_<prefix>`, `hwk_<prefix>_***` or the whole key. */
  async getByPrefix(prefix: string): Promise<ApiKey | undefined> {
    const row = await this.#ctx.db.selectFrom('api_keys').selectAll()
      .where('prefix', '=', normaliseApiKeyPrefix(prefix)).executeTakeFirst();
    return row === undefined ? undefined : apiKeyFromRow(row);
  }

  async findBySecret(secret: string): Promise<ApiKey | undefined> {
    const prefix = apiKeyPrefix(secret);
    if (prefix === undefined) return undefined;
    const row = await this.#ctx.db.selectFrom('api_keys').selectAll().where('prefix', '=', prefix).executeTakeFirst();
    if (row === undefined || !keyMatchesHash(secret, row.hash)) return undefined;
    return apiKeyFromRow(row);
  }

  async list(): Promise<ApiKey[]> {
    const rows = await this.#ctx.db.selectFrom('api_keys').selectAll().orderBy('id').execute();
    return rows.map(apiKeyFromRow);
  }

  async revoke(id: ApiKeyId): Promise<ApiKey> {
    const row = await this.#ctx.db.updateTable('api_keys')
      .set((eb) => ({ revoked_at: eb.fn.coalesce('revoked_at', eb.val(this.#ctx.nowMs())) }))
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (row === undefined) throw notFound(`API key ${id}`);
    return apiKeyFromRow(row);
  }

  async touch(id: ApiKeyId, at: Date): Promise<void> {
    await this.#ctx.db.updateTable('api_keys').set({ last_used_at: at.getTime() }).where('id', '=', id).execute();
  }
}
