// The shared sign-ins' table on the real PostgreSQL (docs/ha.md): a record is taken once however
// many ask at the same time, a lapsed one is never handed out and is deleted by the next put, and
// only an outcome (which wakes a waiting instance) is written to the change log.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openTestStore } from './testing.js';

describe('ha_sign_ins (postgres)', () => {
  it('hands a record to exactly one of many concurrent takers, then to nobody', async () => {
    const t = await openTestStore('postgres', { changeLog: { instanceId: 'hw-a' } });
    try {
      await t.store.transaction((tx) => tx.ha.putSignIn('flight', 'state-1', 'sealed-body', 60_000));
      const taken = await Promise.all(Array.from({ length: 8 }, () => t.store.read.ha.takeSignIn('flight', 'state-1')));
      assert.deepEqual(taken.filter((body) => body !== undefined), ['sealed-body']);
      assert.equal(await t.store.read.ha.takeSignIn('flight', 'state-1'), undefined, 'used up');
      // Kinds do not mix: a handle id is no state.
      await t.store.transaction((tx) => tx.ha.putSignIn('handle', 'same-key', 'link', 60_000));
      assert.equal(await t.store.read.ha.takeSignIn('flight', 'same-key'), undefined);
      assert.equal(await t.store.read.ha.takeSignIn('handle', 'same-key'), 'link');
    } finally {
      await t.cleanup();
    }
  });

  it('never hands out a lapsed record, prunes it at the next put, and logs only outcomes', async () => {
    const t = await openTestStore('postgres', { changeLog: { instanceId: 'hw-a' } });
    try {
      await t.store.transaction((tx) => tx.ha.putSignIn('flight', 'old', 'stale', 30));
      await new Promise((r) => setTimeout(r, 80));
      assert.equal(await t.store.read.ha.takeSignIn('flight', 'old'), undefined, 'expired');
      assert.equal((await t.store.read.ha.readLog(0, 10)).length, 0, 'handles and flights wake nobody');
      await t.store.transaction((tx) => tx.ha.putSignIn('outcome', 'waiter-1', 'ok', 60_000));
      const log = await t.store.read.ha.readLog(0, 10);
      assert.equal(log.length, 1);
      assert.equal(log[0]!.changes[0]![0], 'signInOutcome');
      // The lapsed flight was deleted by that put, not only skipped.
      const db = new pg.Client({ connectionString: t.config.database.type === 'postgres' ? t.config.database.postgres.url ?? undefined : undefined });
      await db.connect();
      try {
        const rows = (await db.query<{ kind: string; key: string }>('select kind, key from ha_sign_ins order by seq')).rows;
        assert.deepEqual(rows.map((row) => [row.kind, row.key]), [['outcome', 'waiter-1']]);
      } finally {
        await db.end();
      }
    } finally {
      await t.cleanup();
    }
  });
});
