// OAuth clients of Tailscale's API v2 and the access tokens they mint. Secrets and tokens are
// stored as SHA-256 hashes: both are long random strings, so a slow hash would add nothing.
import { randomBytes } from 'node:crypto';
import type { OAuthClient, TailnetId } from '../model/index.js';
import { StoreErrors, storeError } from './errors.js';
import { insertRow, mapViolations, type RepoContext } from './repo-context.js';
import { hashKey, keyMatchesHash, randomBase62 } from './secrets.js';
import type { OAuthClientTable } from './schema.js';
import type { OAuthRepo } from './types.js';

/** Tailscale's client secrets look like `tskey-client-<id>-<secret>`; ours carry our tag. */
export const OAUTH_CLIENT_SECRET_TAG = 'hwkey-client-';
export const OAUTH_ACCESS_TOKEN_TAG = 'hwtoken-';

function clientFromRow(row: { id: number; tailnet_id: number; client_id: string; scopes: string; tags: string; description: string; created_at: number }): OAuthClient {
  return {
    id: row.id,
    tailnetId: row.tailnet_id as TailnetId,
    clientId: row.client_id,
    scopes: JSON.parse(row.scopes) as string[],
    tags: JSON.parse(row.tags) as string[],
    description: row.description,
    createdAt: new Date(row.created_at),
  };
}

export class SqlOAuthRepo implements OAuthRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async createClient(input: { tailnetId: TailnetId; scopes: readonly string[]; tags: readonly string[]; description: string }): Promise<{ client: OAuthClient; secret: string }> {
    const clientId = `k${randomBase62(14)}`;
    const secret = `${OAUTH_CLIENT_SECRET_TAG}${clientId}-${randomBase62(40)}`;
    const row = await mapViolations(
      insertRow(this.#ctx, 'oauth_clients', {
        tailnet_id: input.tailnetId,
        client_id: clientId,
        secret_hash: hashKey(secret),
        scopes: JSON.stringify(input.scopes),
        tags: JSON.stringify(input.tags),
        description: input.description,
        created_at: this.#ctx.nowMs(),
      } satisfies Omit<OAuthClientTable, 'id'>),
      { foreignKey: () => storeError(StoreErrors.referenceMissing, `tailnet ${input.tailnetId} does not exist`) },
    );
    return { client: clientFromRow(row), secret };
  }

  async getClient(clientId: string): Promise<OAuthClient | undefined> {
    const row = await this.#ctx.db.selectFrom('oauth_clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
    return row === undefined ? undefined : clientFromRow(row);
  }

  async verifyClient(clientId: string, secret: string): Promise<OAuthClient | undefined> {
    const row = await this.#ctx.db.selectFrom('oauth_clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
    if (row === undefined || !keyMatchesHash(secret, row.secret_hash)) return undefined;
    return clientFromRow(row);
  }

  async listClients(tailnetId: TailnetId): Promise<OAuthClient[]> {
    const rows = await this.#ctx.db.selectFrom('oauth_clients').selectAll().where('tailnet_id', '=', tailnetId).orderBy('id').execute();
    return rows.map(clientFromRow);
  }

  async updateClient(clientId: string, patch: { scopes: readonly string[]; tags: readonly string[]; description: string }): Promise<OAuthClient | undefined> {
    const row = await this.#ctx.db.updateTable('oauth_clients')
      .set({ scopes: JSON.stringify(patch.scopes), tags: JSON.stringify(patch.tags), description: patch.description })
      .where('client_id', '=', clientId).returningAll().executeTakeFirst();
    return row === undefined ? undefined : clientFromRow(row);
  }

  async deleteClient(clientId: string): Promise<boolean> {
    const result = await this.#ctx.db.deleteFrom('oauth_clients').where('client_id', '=', clientId).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  async createToken(client: OAuthClient, scopes: readonly string[], ttlMs: number): Promise<{ token: string; expiresAt: Date }> {
    const token = `${OAUTH_ACCESS_TOKEN_TAG}${randomBytes(32).toString('base64url')}`;
    const now = this.#ctx.nowMs();
    // Expired tokens of this client are of no use to anyone.
    await this.#ctx.db.deleteFrom('oauth_tokens').where('oauth_client_id', '=', client.id).where('expires_at', '<=', now).execute();
    await insertRow(this.#ctx, 'oauth_tokens', { oauth_client_id: client.id, token_hash: hashKey(token), scopes: JSON.stringify(scopes), expires_at: now + ttlMs, created_at: now });
    return { token, expiresAt: new Date(now + ttlMs) };
  }

  async findToken(token: string, nowMs: number): Promise<{ client: OAuthClient; scopes: string[] } | undefined> {
    if (!token.startsWith(OAUTH_ACCESS_TOKEN_TAG)) return undefined;
    const row = await this.#ctx.db.selectFrom('oauth_tokens')
      .innerJoin('oauth_clients', 'oauth_clients.id', 'oauth_tokens.oauth_client_id')
      .select(['oauth_tokens.scopes as token_scopes', 'oauth_tokens.expires_at', 'oauth_clients.id', 'oauth_clients.tailnet_id', 'oauth_clients.client_id', 'oauth_clients.scopes', 'oauth_clients.tags', 'oauth_clients.description', 'oauth_clients.created_at'])
      .where('oauth_tokens.token_hash', '=', hashKey(token))
      .executeTakeFirst();
    if (row === undefined || row.expires_at <= nowMs) return undefined;
    return { client: clientFromRow(row), scopes: JSON.parse(row.token_scopes) as string[] };
  }
}
