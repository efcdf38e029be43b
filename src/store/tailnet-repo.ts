// Tailnets: several per server, `default` always exists and cannot be deleted.
import { DEFAULT_TAILNET_NAME, type Tailnet, type TailnetId, type TailnetSettings } from '../model/index.js';
import { StoreErrors, storeError } from './errors.js';
import { insertRow, mapViolations, notFound, updateRow, type RepoContext } from './repo-context.js';
import { tailnetFromRow } from './rows.js';
import type { TailnetRepo } from './types.js';

export class SqlTailnetRepo implements TailnetRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async create(name: string): Promise<Tailnet> {
    const row = await mapViolations(
      insertRow(this.#ctx, 'tailnets', { name, created_at: this.#ctx.nowMs(), last_ipv4: null, last_ipv6: null }),
      { unique: { tailnets_name_key: () => storeError(StoreErrors.tailnetExists, `tailnet "${name}" already exists`) } },
    );
    this.#ctx.changes?.record('tailnet', row.id);
    return tailnetFromRow(row);
  }

  async get(id: TailnetId): Promise<Tailnet | undefined> {
    const row = await this.#ctx.db.selectFrom('tailnets').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : tailnetFromRow(row);
  }

  async getByName(name: string): Promise<Tailnet | undefined> {
    const row = await this.#ctx.db.selectFrom('tailnets').selectAll().where('name', '=', name).executeTakeFirst();
    return row === undefined ? undefined : tailnetFromRow(row);
  }

  async list(): Promise<Tailnet[]> {
    const rows = await this.#ctx.db.selectFrom('tailnets').selectAll().orderBy('id').execute();
    return rows.map(tailnetFromRow);
  }

  async updateSettings(id: TailnetId, patch: Partial<TailnetSettings>): Promise<Tailnet> {
    const before = await this.get(id);
    if (before === undefined) throw notFound(`tailnet ${id}`);
    const settings: TailnetSettings = { ...before.settings, ...definedOnly(patch) };
    await this.#ctx.db.updateTable('tailnets').set({ settings: JSON.stringify(settings) }).where('id', '=', id).execute();
    this.#ctx.changes?.record('tailnet', id);
    return { ...before, settings };
  }

  async setDeviceApproval(id: TailnetId, enabled: boolean): Promise<Tailnet> {
    const row = await updateRow(this.#ctx, 'tailnets', id, { device_approval: enabled ? 1 : 0 });
    if (row === undefined) throw notFound(`tailnet ${id}`);
    this.#ctx.changes?.record('tailnet', id);
    return tailnetFromRow(row);
  }

  async delete(id: TailnetId): Promise<void> {
    const tailnet = await this.get(id);
    if (tailnet === undefined) throw notFound(`tailnet ${id}`);
    if (tailnet.name === DEFAULT_TAILNET_NAME) {
      throw storeError(StoreErrors.defaultTailnet, `tailnet ${id} ("${DEFAULT_TAILNET_NAME}") cannot be deleted`);
    }
    // Users, nodes, keys and policies go with it (ON DELETE CASCADE); the audit log stays.
    await this.#ctx.db.deleteFrom('tailnets').where('id', '=', id).execute();
    this.#ctx.changes?.record('tailnet', id);
  }
}

function definedOnly<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}
