// Store benchmarks at the scale scaling.md aims for: one tailnet of 50,000 nodes.
// Workload modelled: a large tailnet's first start (bulk insert, full list at start-up) and
// registrations arriving once it is big (one allocation + insert + audit per transaction).
//
//   node --enable-source-maps dist/src/store/store.bench.js [--nodes 50000] [--postgres] [--json]
//
// Runs on SQLite in a temporary directory; --postgres also runs on the test PostgreSQL
// (see testing.ts for the connection). Never asserts; prints medians.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { publicKeyFromBytes } from '../key/index.js';
import { DEFAULT_TAILNET_NAME, type TailnetId } from '../model/index.js';
import { AddressPool } from './address-pool.js';
import { openTestStore, type TestStore } from './testing.js';
import type { Dialect, NewNode, Store } from './types.js';

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
}

function node(tailnetId: TailnetId, i: number, ipv4: string | null, ipv6: string | null): NewNode {
  return {
    tailnetId,
    machineKey: publicKeyFromBytes('machine', randomBytes(32)),
    nodeKey: publicKeyFromBytes('node', randomBytes(32)),
    discoKey: publicKeyFromBytes('disco', randomBytes(32)),
    ipv4,
    ipv6,
    hostname: `host-${i}`,
    givenName: `host-${i}`,
    userId: null,
    tags: ['tag:bench'],
    advertisedRoutes: [],
    approvedRoutes: [],
    endpoints: ['192.0.2.1:41641', '[2001:db8::1]:41641'],
    hostinfo: { OS: 'linux', Hostname: `host-${i}`, IPNVersion: '1.78.3' },
    keyExpiry: null,
    ephemeral: false,
    registerMethod: 'authkey',
    preAuthKeyId: null,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function registrations(store: Store, tailnetId: TailnetId, count: number, offset: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await store.transaction(async (tx) => {
      const addresses = await tx.addresses.allocate(tailnetId);
      await tx.nodes.create(node(tailnetId, offset + i, addresses.ipv4, addresses.ipv6));
      await tx.audit.record({ tailnetId, actor: 'bench', action: 'node.register', target: `host-${offset + i}` });
    });
    times.push(performance.now() - start);
  }
  return times;
}

async function allocationOnly(store: Store, tailnetId: TailnetId, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    await store.transaction(async (tx) => {
      const start = performance.now();
      await tx.addresses.allocate(tailnetId);
      times.push(performance.now() - start);
    });
  }
  return times;
}

export async function benchStore(dialect: Dialect, nodeCount: number): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const record = (name: string, value: number, unit: string) => {
    results.push({ name: `store/${dialect}: ${name}`, value, unit });
    console.log(`store/${dialect}: ${name}: ${value.toFixed(unit === 'ms' ? 1 : 3)} ${unit}`);
  };
  for (const allocation of ['sequential', 'random'] as const) {
    const t: TestStore = await openTestStore(dialect, { prefixes: { allocation } });
    try {
      const { store } = t;
      const tailnet = (await store.read.tailnets.getByName(DEFAULT_TAILNET_NAME))!;
      const v4 = new AddressPool('100.64.0.0/10');
      const v6 = new AddressPool('fd7a:115c:a1e0::/48');
      let a4 = v4.first;
      let a6 = v6.first;
      const rows = Array.from({ length: nodeCount }, (_, i) => {
        a4 = v4.nextUsable(a4 + 1n);
        a6 = v6.nextUsable(a6 + 1n);
        return node(tailnet.id, i, v4.format(a4), v6.format(a6));
      });
      if (allocation === 'sequential') {
        const start = performance.now();
        await store.transaction(async (tx) => {
          for (const row of rows) await tx.nodes.create(row);
        });
        record(`insert ${nodeCount} nodes in one transaction`, performance.now() - start, 'ms');
        const listTimes: number[] = [];
        for (let i = 0; i < 5; i++) {
          const listStart = performance.now();
          const listed = await store.read.nodes.list(tailnet.id);
          listTimes.push(performance.now() - listStart);
          if (listed.length !== nodeCount) throw new Error(`listed ${listed.length}, want ${nodeCount}`);
        }
        record(`list ${nodeCount} nodes (median of 5)`, median(listTimes), 'ms');
      } else {
        await store.transaction(async (tx) => {
          for (const row of rows) await tx.nodes.create(row);
        });
      }
      // The allocator has no cursor yet: the first sequential allocation starts at the prefix
      // start and walks over the bulk-inserted block, the expensive case; later ones are cheap.
      const firstStart = performance.now();
      await allocationOnly(store, tailnet.id, 1);
      record(`${allocation} allocate at ${nodeCount} nodes, first (no cursor yet)`, performance.now() - firstStart, 'ms');
      record(`${allocation} allocate at ${nodeCount} nodes (median of 200)`, median(await allocationOnly(store, tailnet.id, 200)), 'ms');
      record(`${allocation} register (allocate + insert + audit, one tx) at ${nodeCount} nodes (median of 200)`, median(await registrations(store, tailnet.id, 200, nodeCount)), 'ms');
    } finally {
      await t.cleanup();
    }
  }
  return results;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const nodesAt = args.indexOf('--nodes');
  const nodeCount = nodesAt === -1 ? 50_000 : Number(args[nodesAt + 1]);
  const dialects: Dialect[] = args.includes('--postgres') ? ['sqlite', 'postgres'] : ['sqlite'];
  const results: BenchResult[] = [];
  for (const dialect of dialects) results.push(...await benchStore(dialect, nodeCount));
  if (args.includes('--json')) console.log(JSON.stringify(results));
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  await main();
}
