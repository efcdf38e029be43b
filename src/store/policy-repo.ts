// Policy versions: every save is a new row, nothing is overwritten.
import type { PolicyVersion, TailnetId } from '../model/index.js';
import { StoreErrors, storeError } from './errors.js';
import { insertRow, mapViolations, type RepoContext } from './repo-context.js';
import { policyVersionFromRow } from './rows.js';
import type { PolicyRepo } from './types.js';

export class SqlPolicyRepo implements PolicyRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async save(tailnetId: TailnetId, text: string, author: string): Promise<PolicyVersion> {
    const row = await mapViolations(
      insertRow(this.#ctx, 'policies', { tailnet_id: tailnetId, text, author, created_at: this.#ctx.nowMs() }),
      { foreignKey: () => storeError(StoreErrors.referenceMissing, `policy: tailnet ${tailnetId} does not exist`) },
    );
    this.#ctx.changes?.record('policy', tailnetId);
    return policyVersionFromRow(row);
  }

  async latest(tailnetId: TailnetId): Promise<PolicyVersion | undefined> {
    const row = await this.#ctx.db.selectFrom('policies').selectAll()
      .where('tailnet_id', '=', tailnetId).orderBy('id', 'desc').limit(1).executeTakeFirst();
    return row === undefined ? undefined : policyVersionFromRow(row);
  }

  /** Oldest first. */
  async list(tailnetId: TailnetId): Promise<PolicyVersion[]> {
    const rows = await this.#ctx.db.selectFrom('policies').selectAll().where('tailnet_id', '=', tailnetId).orderBy('id').execute();
    return rows.map(policyVersionFromRow);
  }
}
