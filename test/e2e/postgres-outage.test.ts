// PostgreSQL stopped for 30 s under churn (issue 17, item 3), with a private cluster this test
// makes with initdb on its own port (other tests keep the shared one): API writes fail with a
// clear 503, map sessions stay up, changes flow again after the database returns, and no
// acknowledged write is lost.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../../src/client/index.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { createPrivatePostgres, privatePostgresUnavailable, type PrivatePostgres } from '../support/private-postgres.js';

const OUTAGE_MS = 30_000;
const unavailable = await privatePostgresUnavailable();

describe('PostgreSQL outage', { skip: unavailable ?? false }, () => {
  let postgres: PrivatePostgres;
  let server: ServerProcess;
  before(async () => {
    postgres = await createPrivatePostgres();
    server = await startServerProcess({ extraConfig: [`database: { type: postgres, postgres: { url: ${JSON.stringify(postgres.url)} } }`, 'limits: { api_requests_per_minute_per_key: 0 }'] });
  });
  after(async () => {
    await server?.stop();
    await postgres?.cleanup();
  });

  it('answers writes with 503 while it is down, keeps map sessions, and loses nothing', async () => {
    await server.cli(['users', 'create', 'owner']);
    const apiKey = (await server.cli(['apikeys', 'create'])).trim();
    const authKey = (JSON.parse(await server.cli(['preauthkeys', 'create', '--user', 'owner', '--reusable', '--output', 'json'])) as { key: string }).key;
    const clients: NodeClient[] = [];
    for (const name of ['pg-a', 'pg-b', 'pg-c']) {
      const client = new NodeClient({ serverUrl: server.url, hostname: name });
      await client.loginWithAuthKey(authKey);
      await client.startMap();
      clients.push(client);
    }
    const [a, b] = clients as [NodeClient, NodeClient, NodeClient];
    await b.waitFor('pg-a', (nm) => nm.peerByName('pg-a') !== undefined, 10_000);
    const acknowledged: string[] = [];
    const refused: Array<{ status: number; code: string }> = [];
    const createUser = async (name: string): Promise<number> => {
      const res = await fetch(`${server.url}/api/v1/users`, {
        method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ name }),
        signal: AbortSignal.timeout(20_000),
      });
      const body = await res.json() as { error?: { code: string } };
      if (res.status === 201) acknowledged.push(name);
      else refused.push({ status: res.status, code: body.error?.code ?? '' });
      return res.status;
    };
    try {
      for (let i = 0; i < 5; i++) assert.equal(await createUser(`before${i}`), 201);

      await postgres.stop();
      const outageStart = Date.now();
      let i = 0;
      while (Date.now() - outageStart < OUTAGE_MS) {
        await createUser(`during${i++}`).catch(() => refused.push({ status: 0, code: 'no answer' }));
        // Churn on the map side too: endpoint updates are live fields, not database writes.
        await a.liteUpdate({ endpoints: [`198.51.100.7:${10_000 + i}`] }).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 1_000));
      }
      assert.ok(server.alive(), 'the server survived the outage');
      assert.ok(refused.length > 0, 'writes during the outage were refused');
      assert.ok(refused.every((r) => r.status === 503 && r.code === 'HW_STORE_UNAVAILABLE'), `every refusal is a clear 503: ${JSON.stringify(refused.slice(0, 5))}`);
      for (const client of clients) assert.equal(client.streamEnded, false, `${client.hostinfo.Hostname}'s map session is still up`);

      await postgres.start();
      // Writes succeed again (the pool reconnects by itself).
      const deadline = Date.now() + 20_000;
      let status = 0;
      while (Date.now() < deadline && status !== 201) {
        status = await createUser(`after${Date.now()}`).catch(() => 0);
        if (status !== 201) await new Promise((r) => setTimeout(r, 500));
      }
      assert.equal(status, 201, 'writes succeed after the database returns');
      // Changes flow: a new endpoint of pg-a reaches pg-b.
      await a.liteUpdate({ endpoints: ['198.51.100.9:4242'] });
      await b.waitFor('pg-a at its new endpoint', (nm) => nm.peerByName('pg-a')?.Endpoints?.includes('198.51.100.9:4242') === true, 10_000);

      const listed = JSON.parse(await server.cli(['users', 'list', '--output', 'json'])) as Array<{ name: string }>;
      const names = new Set(listed.map((u) => u.name));
      assert.deepEqual(acknowledged.filter((n) => !names.has(n)), [], 'every acknowledged user is there');
    } finally {
      for (const c of clients) await c.close();
    }
  });
});
