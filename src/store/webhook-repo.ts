// Webhook endpoints and their delivery queue. A delivery row is written for each endpoint an
// event concerns; the dispatcher takes due rows, POSTs them, and marks them delivered or pushes
// next_attempt_at back. Rows survive a restart, so a queued event is sent after it.
import type { TailnetId, Webhook, WebhookDelivery } from '../model/index.js';
import { StoreErrors, storeError } from './errors.js';
import { insertRow, mapViolations, type RepoContext } from './repo-context.js';
import { randomBase62 } from './secrets.js';
import type { Selectable } from 'kysely';
import type { WebhookDeliveryTable, WebhookTable } from './schema.js';
import type { WebhookRepo } from './types.js';

export const WEBHOOK_SECRET_TAG = 'hwkey-webhook-';

function webhookFromRow(row: Selectable<WebhookTable>): Webhook {
  return {
    id: row.id,
    tailnetId: row.tailnet_id as TailnetId,
    endpointId: row.endpoint_id,
    url: row.url,
    providerType: row.provider_type,
    subscriptions: JSON.parse(row.subscriptions) as string[],
    secret: row.secret,
    creator: row.creator,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

function deliveryFromRow(row: Selectable<WebhookDeliveryTable>): WebhookDelivery {
  return {
    id: row.id,
    webhookId: row.webhook_id,
    payload: row.payload,
    attempts: row.attempts,
    nextAttemptAt: new Date(row.next_attempt_at),
    lastError: row.last_error,
    deliveredAt: row.delivered_at === null ? null : new Date(row.delivered_at),
    createdAt: new Date(row.created_at),
  };
}

export class SqlWebhookRepo implements WebhookRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async create(input: { tailnetId: TailnetId; url: string; providerType: string; subscriptions: readonly string[]; creator: string }): Promise<Webhook> {
    const now = this.#ctx.nowMs();
    const row = await mapViolations(
      insertRow(this.#ctx, 'webhooks', {
        tailnet_id: input.tailnetId,
        endpoint_id: `w${randomBase62(14)}`,
        url: input.url,
        provider_type: input.providerType,
        subscriptions: JSON.stringify(input.subscriptions),
        secret: `${WEBHOOK_SECRET_TAG}${randomBase62(40)}`,
        creator: input.creator,
        created_at: now,
        updated_at: now,
      }),
      { foreignKey: () => storeError(StoreErrors.referenceMissing, `tailnet ${input.tailnetId} does not exist`) },
    );
    return webhookFromRow(row);
  }

  async get(endpointId: string): Promise<Webhook | undefined> {
    const row = await this.#ctx.db.selectFrom('webhooks').selectAll().where('endpoint_id', '=', endpointId).executeTakeFirst();
    return row === undefined ? undefined : webhookFromRow(row);
  }

  async getById(id: number): Promise<Webhook | undefined> {
    const row = await this.#ctx.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : webhookFromRow(row);
  }

  async list(tailnetId?: TailnetId): Promise<Webhook[]> {
    let query = this.#ctx.db.selectFrom('webhooks').selectAll();
    if (tailnetId !== undefined) query = query.where('tailnet_id', '=', tailnetId);
    return (await query.orderBy('id').execute()).map(webhookFromRow);
  }

  async update(endpointId: string, patch: { subscriptions?: readonly string[]; rotateSecret?: boolean }): Promise<Webhook | undefined> {
    const values: { subscriptions?: string; secret?: string; updated_at: number } = { updated_at: this.#ctx.nowMs() };
    if (patch.subscriptions !== undefined) values.subscriptions = JSON.stringify(patch.subscriptions);
    if (patch.rotateSecret === true) values.secret = `${WEBHOOK_SECRET_TAG}${randomBase62(40)}`;
    const row = await this.#ctx.db.updateTable('webhooks').set(values).where('endpoint_id', '=', endpointId).returningAll().executeTakeFirst();
    return row === undefined ? undefined : webhookFromRow(row);
  }

  async delete(endpointId: string): Promise<boolean> {
    const result = await this.#ctx.db.deleteFrom('webhooks').where('endpoint_id', '=', endpointId).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  async enqueue(webhookId: number, payload: string, dedupeKey: string | null = null): Promise<boolean> {
    const now = this.#ctx.nowMs();
    const inserted = await this.#ctx.db.insertInto('webhook_deliveries')
      .values({ webhook_id: webhookId, payload, dedupe_key: dedupeKey, attempts: 0, next_attempt_at: now, last_error: null, delivered_at: null, created_at: now })
      .onConflict((oc) => oc.column('dedupe_key').doNothing())
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  async due(nowMs: number, limit: number): Promise<WebhookDelivery[]> {
    const rows = await this.#ctx.db.selectFrom('webhook_deliveries').selectAll()
      .where('delivered_at', 'is', null).where('next_attempt_at', '<=', nowMs)
      .orderBy('next_attempt_at').orderBy('id').limit(limit).execute();
    return rows.map(deliveryFromRow);
  }

  async claimDue(nowMs: number, limit: number, claimMs: number): Promise<WebhookDelivery[]> {
    let query = this.#ctx.db.selectFrom('webhook_deliveries').select('id')
      .where('delivered_at', 'is', null).where('next_attempt_at', '<=', nowMs)
      .orderBy('next_attempt_at').orderBy('id').limit(limit);
    // SQLite has one writer, so its transaction alone makes the claim exclusive.
    if (this.#ctx.dialect === 'postgres') query = query.forUpdate().skipLocked();
    const ids = (await query.execute()).map((row) => row.id);
    if (ids.length === 0) return [];
    const rows = await this.#ctx.db.updateTable('webhook_deliveries').set({ next_attempt_at: nowMs + claimMs })
      .where('id', 'in', ids).returningAll().execute();
    // The rows as they were due: attempts and creation time are what the delivery needs.
    return rows.map(deliveryFromRow).sort((a, b) => a.id - b.id);
  }

  async nextDueAt(): Promise<number | null> {
    const row = await this.#ctx.db.selectFrom('webhook_deliveries').select((eb) => eb.fn.min('next_attempt_at').as('next'))
      .where('delivered_at', 'is', null).executeTakeFirst();
    return row?.next === null || row?.next === undefined ? null : Number(row.next);
  }

  async markDelivered(id: number, atMs: number): Promise<void> {
    await this.#ctx.db.updateTable('webhook_deliveries').set((eb) => ({ delivered_at: atMs, attempts: eb('attempts', '+', 1), last_error: null })).where('id', '=', id).execute();
  }

  async markFailed(id: number, error: string, nextAttemptAtMs: number): Promise<void> {
    await this.#ctx.db.updateTable('webhook_deliveries').set((eb) => ({ attempts: eb('attempts', '+', 1), last_error: error.slice(0, 500), next_attempt_at: nextAttemptAtMs })).where('id', '=', id).execute();
  }

  async deliveries(webhookId: number, limit: number): Promise<WebhookDelivery[]> {
    const rows = await this.#ctx.db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', webhookId).orderBy('id', 'desc').limit(limit).execute();
    return rows.map(deliveryFromRow);
  }
}
