// The audit log of admin changes. Written in the transaction of the change it records, so an
// entry exists exactly when the change was committed.
import type { AuditEntry, TailnetId } from '../model/index.js';
import { insertRow, type RepoContext } from './repo-context.js';
import { auditEntryFromRow } from './rows.js';
import type { AuditRepo, NewAuditEntry } from './types.js';

export const DEFAULT_AUDIT_LIST_LIMIT = 100;

export class SqlAuditRepo implements AuditRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async record(entry: NewAuditEntry): Promise<AuditEntry> {
    const row = await insertRow(this.#ctx, 'audit_log', {
      tailnet_id: entry.tailnetId,
      actor: entry.actor,
      action: entry.action,
      target: entry.target,
      details: JSON.stringify(entry.details ?? {}),
      created_at: this.#ctx.nowMs(),
      from_address: entry.from ?? null,
    });
    return auditEntryFromRow(row);
  }

  /** Newest first; `limit` defaults to 100. */
  async list(filter: { tailnetId?: TailnetId; limit?: number }): Promise<AuditEntry[]> {
    let query = this.#ctx.db.selectFrom('audit_log').selectAll();
    if (filter.tailnetId !== undefined) query = query.where('tailnet_id', '=', filter.tailnetId);
    const rows = await query.orderBy('id', 'desc').limit(filter.limit ?? DEFAULT_AUDIT_LIST_LIMIT).execute();
    return rows.map(auditEntryFromRow);
  }
}
