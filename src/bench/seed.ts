// Writes a benchmark workload's users and devices into a store in one transaction: the fastest
// honest way to a big tailnet (every row through the store's own repositories). Each benchmark
// says what differs per device (keys, routes, hostinfo) through `device`.
import type { DiscoPublicKey, MachinePublicKey, NodePublicKey } from '../key/index.js';
import type { UserId } from '../model/index.js';
import type { Store } from '../store/index.js';
import type { EngineWorkload } from './workload.js';

export interface SeededDevice {
  machineKey: MachinePublicKey;
  nodeKey: NodePublicKey;
  discoKey: DiscoPublicKey | null;
  advertisedRoutes: string[];
  endpoints: string[];
  hostinfo: Record<string, unknown>;
}

/** Stores `workload` in the default tailnet; with `policy`, its policy text too. */
export async function storeWorkload(
  store: Store,
  workload: Pick<EngineWorkload, 'users' | 'nodes' | 'policyText'>,
  device: (index: number, node: EngineWorkload['nodes'][number]) => SeededDevice,
  options: { policy: boolean },
): Promise<void> {
  const tailnet = await store.read.tailnets.getByName('default');
  if (tailnet === undefined) throw new Error('bench: the default tailnet is missing');
  await store.transaction(async (tx) => {
    const userIds = new Map<number, UserId>();
    for (const u of workload.users) userIds.set(u.id, (await tx.users.create({ tailnetId: tailnet.id, name: u.name, email: u.email })).id);
    for (const [index, n] of workload.nodes.entries()) {
      const d = device(index, n);
      await tx.nodes.create({
        tailnetId: tailnet.id,
        machineKey: d.machineKey, nodeKey: d.nodeKey, discoKey: d.discoKey,
        ipv4: n.ipv4, ipv6: n.ipv6,
        hostname: n.name, givenName: n.name,
        userId: n.userId === null ? null : (userIds.get(n.userId) ?? null),
        tags: [...n.tags].sort(),
        advertisedRoutes: d.advertisedRoutes, approvedRoutes: [], endpoints: d.endpoints,
        hostinfo: d.hostinfo,
        keyExpiry: null, ephemeral: false, registerMethod: 'cli', preAuthKeyId: null,
      });
    }
    if (options.policy) await tx.policies.save(tailnet.id, workload.policyText, 'bench');
  });
}
