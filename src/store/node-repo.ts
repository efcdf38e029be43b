// Nodes. The unique indexes (node key server-wide; address and given name per tailnet) are the
// backstop; callers check givenNameTaken() and allocate addresses first, because on PostgreSQL a
// violated constraint aborts the whole transaction.
import { randomBase62 } from './secrets.js';
import { shortKey, type MachinePublicKey, type NodePublicKey } from '../key/index.js';
import type { Node, NodeId, TailnetId } from '../model/index.js';
import { formatIP, tryParseIP } from '../util/ip.js';
import { StoreErrors, storeError } from './errors.js';
import { insertRow, mapViolations, notFound, updateRow, type RepoContext, type ViolationHandlers } from './repo-context.js';
import { msOrNull, nodeFromRow, nodeRowFromNew, nodeRowUpdateFromPatch } from './rows.js';
import type { NewNode, NodeLiveFields, NodePatch, NodeRepo } from './types.js';

/** Tailscale's stable ids look like `nXXXXXXXXCNTRL`; ours are `n` + 14 base62 characters. */
function newStableId(): string {
  return `n${randomBase62(14)}`;
}

function canonicalAddress(text: string | null, family: 4 | 6, field: string): string | null {
  if (text === null) return null;
  const addr = tryParseIP(text);
  if (addr === null || addr.family !== family) {
    throw storeError(StoreErrors.invalidValue, `node ${field}: ${JSON.stringify(text)} is not an IPv${family} address`);
  }
  return formatIP(addr);
}

export class SqlNodeRepo implements NodeRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  #violations(tailnetId: TailnetId, values: { nodeKey?: string; ipv4?: string | null; ipv6?: string | null; givenName?: string }): ViolationHandlers {
    return {
      unique: {
        nodes_node_key_key: () => storeError(StoreErrors.nodeKeyInUse, `node key ${values.nodeKey === undefined ? '' : shortKey(values.nodeKey as NodePublicKey)} is already used by another node`),
        nodes_tailnet_ipv4_key: () => storeError(StoreErrors.addressInUse, `tailnet ${tailnetId}: address ${values.ipv4 ?? ''} is already used by another node`),
        nodes_tailnet_ipv6_key: () => storeError(StoreErrors.addressInUse, `tailnet ${tailnetId}: address ${values.ipv6 ?? ''} is already used by another node`),
        nodes_tailnet_given_name_key: () => storeError(StoreErrors.givenNameTaken, `tailnet ${tailnetId}: name "${values.givenName ?? ''}" is already used by another node`),
      },
    };
  }

  async create(node: NewNode): Promise<Node> {
    const ipv4 = canonicalAddress(node.ipv4, 4, 'ipv4');
    const ipv6 = canonicalAddress(node.ipv6, 6, 'ipv6');
    const row = nodeRowFromNew({ ...node, ipv4, ipv6 }, newStableId(), this.#ctx.nowMs());
    const inserted = await mapViolations(
      insertRow(this.#ctx, 'nodes', row),
      {
        ...this.#violations(node.tailnetId, { nodeKey: node.nodeKey, ipv4, ipv6, givenName: node.givenName }),
        foreignKey: () => storeError(
          StoreErrors.referenceMissing,
          `node: tailnet ${node.tailnetId}${node.userId === null ? '' : `, user ${node.userId}`}${node.preAuthKeyId === null ? '' : ` or pre-auth key ${node.preAuthKeyId}`} does not exist`,
        ),
      },
    );
    this.#ctx.changes?.record('node', inserted.id);
    return nodeFromRow(inserted);
  }

  async get(id: NodeId): Promise<Node | undefined> {
    const row = await this.#ctx.db.selectFrom('nodes').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : nodeFromRow(row);
  }

  async getByNodeKey(key: NodePublicKey): Promise<Node | undefined> {
    const row = await this.#ctx.db.selectFrom('nodes').selectAll().where('node_key', '=', key).executeTakeFirst();
    return row === undefined ? undefined : nodeFromRow(row);
  }

  async getByMachineKey(tailnetId: TailnetId, key: MachinePublicKey): Promise<Node[]> {
    const rows = await this.#ctx.db.selectFrom('nodes').selectAll()
      .where('tailnet_id', '=', tailnetId).where('machine_key', '=', key).orderBy('id').execute();
    return rows.map(nodeFromRow);
  }

  async list(tailnetId: TailnetId): Promise<Node[]> {
    const rows = await this.#ctx.db.selectFrom('nodes').selectAll().where('tailnet_id', '=', tailnetId).orderBy('id').execute();
    return rows.map(nodeFromRow);
  }

  async listAll(): Promise<Node[]> {
    const rows = await this.#ctx.db.selectFrom('nodes').selectAll().orderBy('id').execute();
    return rows.map(nodeFromRow);
  }

  async update(id: NodeId, patch: NodePatch): Promise<Node> {
    const canonical: NodePatch = {
      ...patch,
      ...(patch.ipv4 !== undefined ? { ipv4: canonicalAddress(patch.ipv4, 4, 'ipv4') } : {}),
      ...(patch.ipv6 !== undefined ? { ipv6: canonicalAddress(patch.ipv6, 6, 'ipv6') } : {}),
    };
    const values = { ...nodeRowUpdateFromPatch(canonical), updated_at: this.#ctx.nowMs() };
    // The tailnet is only known after the update; the messages name the node instead.
    const row = await mapViolations(
      updateRow(this.#ctx, 'nodes', id, values),
      {
        unique: {
          nodes_node_key_key: () => storeError(StoreErrors.nodeKeyInUse, `node ${id}: node key ${canonical.nodeKey === undefined ? '' : shortKey(canonical.nodeKey)} is already used by another node`),
          nodes_tailnet_ipv4_key: () => storeError(StoreErrors.addressInUse, `node ${id}: address ${canonical.ipv4 ?? ''} is already used by another node of its tailnet`),
          nodes_tailnet_ipv6_key: () => storeError(StoreErrors.addressInUse, `node ${id}: address ${canonical.ipv6 ?? ''} is already used by another node of its tailnet`),
          nodes_tailnet_given_name_key: () => storeError(StoreErrors.givenNameTaken, `node ${id}: name "${canonical.givenName ?? ''}" is already used by another node of its tailnet`),
        },
        foreignKey: () => storeError(StoreErrors.referenceMissing, `node ${id}: the user or pre-auth key does not exist`),
      },
    );
    if (row === undefined) throw notFound(`node ${id}`);
    this.#ctx.changes?.record('node', id);
    return nodeFromRow(row);
  }

  async updateLive(batch: readonly NodeLiveFields[]): Promise<void> {
    // A node deleted since the change was queued simply matches no row.
    for (const live of batch) {
      await this.#ctx.db.updateTable('nodes')
        .set({
          endpoints: JSON.stringify(live.endpoints),
          disco_key: live.discoKey,
          hostinfo: JSON.stringify(live.hostinfo),
          last_seen: msOrNull(live.lastSeen),
        })
        .where('id', '=', live.id)
        .execute();
      this.#ctx.changes?.record('node', live.id);
    }
  }

  async delete(id: NodeId): Promise<void> {
    const result = await this.#ctx.db.deleteFrom('nodes').where('id', '=', id).executeTakeFirst();
    if (result.numDeletedRows === 0n) throw notFound(`node ${id}`);
    this.#ctx.changes?.record('node', id);
  }

  async givenNameTaken(tailnetId: TailnetId, givenName: string, exceptId?: NodeId): Promise<boolean> {
    let query = this.#ctx.db.selectFrom('nodes').select('id').where('tailnet_id', '=', tailnetId).where('given_name', '=', givenName);
    if (exceptId !== undefined) query = query.where('id', '!=', exceptId);
    return (await query.executeTakeFirst()) !== undefined;
  }
}
