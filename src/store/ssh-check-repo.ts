// When each user last passed an SSH check (re-authenticated for SSH `check` mode). In the
// database rather than in one process, so with high availability a check completed through one
// instance is honoured by every other within the rule's checkPeriod (docs/ha.md).
import type { TailnetId, UserId } from '../model/index.js';
import type { RepoContext } from './repo-context.js';

export interface SshCheckRepo {
  /** Records that `userId` passed a check at `atMs`. */
  recordPass(tailnetId: TailnetId, userId: UserId, atMs: number): Promise<void>;
  /** When the user last passed a check, ms since the epoch; undefined when never. */
  lastPass(tailnetId: TailnetId, userId: UserId): Promise<number | undefined>;
}

export class SqlSshCheckRepo implements SshCheckRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async recordPass(tailnetId: TailnetId, userId: UserId, atMs: number): Promise<void> {
    await this.#ctx.db.insertInto('ssh_check_passes').values({ tailnet_id: tailnetId, user_id: userId, checked_at: atMs })
      .onConflict((oc) => oc.columns(['tailnet_id', 'user_id']).doUpdateSet({ checked_at: atMs }))
      .execute();
  }

  async lastPass(tailnetId: TailnetId, userId: UserId): Promise<number | undefined> {
    const row = await this.#ctx.db.selectFrom('ssh_check_passes').select('checked_at')
      .where('tailnet_id', '=', tailnetId).where('user_id', '=', userId).executeTakeFirst();
    return row === undefined ? undefined : Number(row.checked_at);
  }
}
