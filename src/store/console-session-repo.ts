// Web console sessions and single-use sign-in links (migration 0004). The caller hashes tokens;
// this repository never sees one. Links are consumed with one conditional UPDATE so that the
// same link opened twice (two tabs, or a stolen copy) yields at most one session.
import type { ConsoleLoginLink, ConsoleSession, TailnetId, UserId, UserRole } from '../model/index.js';
import { USER_ROLES } from '../model/index.js';
import { insertRow, type RepoContext } from './repo-context.js';
import type { ConsoleLoginLinkRow, ConsoleSessionRow } from './schema.js';
import type { ConsoleSessionRepo, NewConsoleGrant } from './types.js';

const roleFrom = (text: string): UserRole => (USER_ROLES as readonly string[]).includes(text) ? (text as UserRole) : 'member';

function sessionFromRow(row: ConsoleSessionRow): ConsoleSession {
  return {
    id: Number(row.id),
    tailnetId: Number(row.tailnet_id) as TailnetId,
    userId: row.user_id === null ? null : (Number(row.user_id) as UserId),
    role: roleFrom(row.role),
    actor: row.actor,
    createdAt: new Date(Number(row.created_at)),
    lastSeenAt: new Date(Number(row.last_seen_at)),
    expiresAt: new Date(Number(row.expires_at)),
    revokedAt: row.revoked_at === null ? null : new Date(Number(row.revoked_at)),
  };
}

function linkFromRow(row: ConsoleLoginLinkRow): ConsoleLoginLink {
  return {
    id: Number(row.id),
    tailnetId: Number(row.tailnet_id) as TailnetId,
    userId: row.user_id === null ? null : (Number(row.user_id) as UserId),
    role: roleFrom(row.role),
    actor: row.actor,
    expiresAt: new Date(Number(row.expires_at)),
    usedAt: row.used_at === null ? null : new Date(Number(row.used_at)),
    createdAt: new Date(Number(row.created_at)),
  };
}

export class SqlConsoleSessionRepo implements ConsoleSessionRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async createSession(tokenHash: string, grant: NewConsoleGrant): Promise<ConsoleSession> {
    const now = grant.at.getTime();
    const row = await insertRow(this.#ctx, 'console_sessions', {
      token_hash: tokenHash,
      tailnet_id: grant.tailnetId,
      user_id: grant.userId,
      role: grant.role,
      actor: grant.actor,
      created_at: now,
      last_seen_at: now,
      expires_at: grant.expiresAt.getTime(),
      revoked_at: null,
    });
    return sessionFromRow(row);
  }

  async findSession(tokenHash: string): Promise<ConsoleSession | undefined> {
    const row = await this.#ctx.db.selectFrom('console_sessions').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return row === undefined ? undefined : sessionFromRow(row);
  }

  async touchSession(id: number, at: Date): Promise<void> {
    await this.#ctx.db.updateTable('console_sessions').set({ last_seen_at: at.getTime() }).where('id', '=', id).execute();
  }

  async revokeSession(id: number, at: Date): Promise<void> {
    await this.#ctx.db.updateTable('console_sessions')
      .set((eb) => ({ revoked_at: eb.fn.coalesce('revoked_at', eb.val(at.getTime())) }))
      .where('id', '=', id).execute();
  }

  async createLink(tokenHash: string, grant: NewConsoleGrant): Promise<ConsoleLoginLink> {
    const row = await insertRow(this.#ctx, 'console_login_links', {
      token_hash: tokenHash,
      tailnet_id: grant.tailnetId,
      user_id: grant.userId,
      role: grant.role,
      actor: grant.actor,
      expires_at: grant.expiresAt.getTime(),
      used_at: null,
      created_at: grant.at.getTime(),
    });
    return linkFromRow(row);
  }

  async consumeLink(tokenHash: string, at: Date): Promise<ConsoleLoginLink | undefined> {
    const result = await this.#ctx.db.updateTable('console_login_links').set({ used_at: at.getTime() })
      .where('token_hash', '=', tokenHash).where('used_at', 'is', null).executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) return undefined;
    const row = await this.#ctx.db.selectFrom('console_login_links').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return row === undefined ? undefined : linkFromRow(row);
  }

  async prune(before: Date): Promise<number> {
    const cut = before.getTime();
    const sessions = await this.#ctx.db.deleteFrom('console_sessions').where('expires_at', '<', cut).executeTakeFirst();
    const links = await this.#ctx.db.deleteFrom('console_login_links').where('expires_at', '<', cut).executeTakeFirst();
    return Number(sessions.numDeletedRows) + Number(links.numDeletedRows);
  }
}
