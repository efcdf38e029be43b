// The change log of high availability at the store level, on the real PostgreSQL: what a
// transaction writes is appended with it, in order, and announced after COMMIT.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { DEFAULT_TAILNET_NAME, type NodeId } from '../model/index.js';
import { CHANGE_CHANNEL } from './change-log.js';
import { openStore } from './open-store.js';
import { openTestStore } from './testing.js';

describe('change log (postgres)', () => {
  it('appends what a transaction wrote, in the same transaction, and NOTIFYs after commit', async () => {
    const t = await openTestStore('postgres', { changeLog: { instanceId: 'hw-a' } });
    const listener = new pg.Client({ connectionString: t.config.database.type === 'postgres' ? t.config.database.postgres.url ?? undefined : undefined });
    try {
      await listener.connect();
      const notified: string[] = [];
      listener.on('notification', (message) => { if (message.channel === CHANGE_CHANNEL) notified.push(message.payload ?? ''); });
      await listener.query(`LISTEN ${CHANGE_CHANNEL}`);
      const tailnet = (await t.store.read.tailnets.getByName(DEFAULT_TAILNET_NAME))!;
      const user = await t.store.transaction(async (tx) => {
        const created = await tx.users.create({ tailnetId: tailnet.id, name: 'alice' });
        await tx.policies.save(tailnet.id, '{}', 'test');
        await tx.users.update(created.id, { displayName: 'Alice' });
        return created;
      });
      // A rolled-back transaction leaves no log row.
      await assert.rejects(t.store.transaction(async (tx) => {
        await tx.users.create({ tailnetId: tailnet.id, name: 'bob' });
        throw new Error('abort');
      }), /abort/);
      // A transaction that writes nothing the instances hold in memory appends nothing.
      await t.store.transaction((tx) => tx.audit.record({ tailnetId: null, actor: 'test', action: 'noop', target: 'x' }));
      const log = await t.store.read.ha.readLog(0, 10);
      assert.equal(log.length, 1);
      assert.equal(log[0]!.instanceId, 'hw-a');
      assert.deepEqual(log[0]!.changes, [['user', user.id], ['policy', tailnet.id]]);
      for (let i = 0; i < 50 && notified.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(notified, [String(log[0]!.position)]);
      assert.deepEqual(await t.store.read.ha.logBounds(), { oldest: log[0]!.position, newest: log[0]!.position });
    } finally {
      await listener.end();
      await t.cleanup();
    }
  });

  it('keeps positions in commit order under concurrent writers', async () => {
    const t = await openTestStore('postgres', { changeLog: { instanceId: 'hw-a' } });
    try {
      const tailnet = (await t.store.read.tailnets.getByName(DEFAULT_TAILNET_NAME))!;
      const created = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        t.store.transaction((tx) => tx.users.create({ tailnetId: tailnet.id, name: `u${i}` }))));
      const log = await t.store.read.ha.readLog(0, 100);
      assert.equal(log.length, 20);
      assert.deepEqual(new Set(log.map((e) => e.changes[0]![1])), new Set(created.map((u) => u.id)));
      for (let i = 1; i < log.length; i++) assert.ok(log[i]!.position > log[i - 1]!.position);
    } finally {
      await t.cleanup();
    }
  });

  it('dates log rows and prunes them by the database clock, whatever the instance clock says', async () => {
    // The instance's wall clock steps (NTP, a VM resumed). Dated and pruned by it, rows written a
    // moment ago that lagging instances still need would be deleted at once: after a forward step
    // those written before it, after a corrected backward step those written during it.
    let offsetMs = 0;
    const t = await openTestStore('postgres', { changeLog: { instanceId: 'hw-a' }, now: () => Date.now() + offsetMs });
    const createUser = async (name: string) => {
      const tailnet = (await t.store.read.tailnets.getByName(DEFAULT_TAILNET_NAME))!;
      await t.store.transaction((tx) => tx.users.create({ tailnetId: tailnet.id, name }));
    };
    try {
      await createUser('u1');
      await createUser('u2');
      offsetMs = 2 * 3_600_000;
      assert.equal(await t.store.read.ha.pruneLog(3_600_000), 0, 'a forward step prunes nothing written seconds ago');
      offsetMs = -2 * 3_600_000;
      await createUser('u3');
      await createUser('u4');
      offsetMs = 0;
      assert.equal(await t.store.read.ha.pruneLog(3_600_000), 0, 'rows written while the clock was behind are not old');
      assert.equal((await t.store.read.ha.readLog(0, 10)).length, 4);
      // A retention shorter than the rows' real age prunes all but the newest.
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(await t.store.read.ha.pruneLog(10), 3);
      const { oldest, newest } = await t.store.read.ha.logBounds();
      assert.equal(oldest, newest);
    } finally {
      await t.cleanup();
    }
  });

  it('tracks presence by live lease and reaps expired instances', async () => {
    const t = await openTestStore('postgres', { changeLog: { instanceId: 'hw-a' } });
    try {
      const tailnet = (await t.store.read.tailnets.getByName(DEFAULT_TAILNET_NAME))!;
      const user = await t.store.transaction((tx) => tx.users.create({ tailnetId: tailnet.id, name: 'alice' }));
      const node = await t.store.transaction(async (tx) => {
        const addresses = await tx.addresses.allocate(tailnet.id);
        return tx.nodes.create({
          tailnetId: tailnet.id, machineKey: `mkey:${'1'.repeat(64)}` as never, nodeKey: `nodekey:${'2'.repeat(64)}` as never, discoKey: null,
          ...addresses, hostname: 'h', givenName: 'h', userId: user.id, tags: [], advertisedRoutes: [], approvedRoutes: [], endpoints: [],
          hostinfo: {}, keyExpiry: null, ephemeral: false, registerMethod: 'authkey', preAuthKeyId: null,
        });
      });
      await t.store.transaction(async (tx) => {
        await tx.ha.renewLease('hw-a', 'http://a', 60_000);
        await tx.ha.renewLease('hw-b', 'http://b', 60_000);
        await tx.ha.setPresence(node.id, 'hw-b', 100);
      });
      assert.deepEqual(await t.store.read.ha.livePresence([node.id]), new Map([[node.id, 100]]));
      // hw-b stops renewing: its lease runs out and the reaper takes its sessions away.
      await t.store.transaction((tx) => tx.ha.renewLease('hw-b', 'http://b', -1));
      assert.deepEqual(await t.store.read.ha.livePresence([node.id]), new Map());
      const reaped = await t.store.transaction((tx) => tx.ha.reapExpired());
      assert.deepEqual(reaped, [node.id as NodeId]);
      assert.deepEqual((await t.store.read.ha.instances()).map((i) => [i.instanceId, i.alive]), [['hw-a', true]]);
      const log = await t.store.read.ha.readLog(0, 100);
      assert.deepEqual(log.at(-1)!.changes, [['presence', node.id]]);
    } finally {
      await t.cleanup();
    }
  });

  it('is refused on SQLite', async () => {
    const t = await openTestStore('sqlite');
    try {
      await assert.rejects(openStore(t.config, { changeLog: { instanceId: 'x' } }), /change log needs PostgreSQL/);
    } finally {
      await t.cleanup();
    }
  });
});
