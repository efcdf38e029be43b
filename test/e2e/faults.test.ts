// Faults survived with nothing lost (issue 17, item 3), against a real `headway serve` process:
// SIGKILL in the middle of API writes and live map sessions, on SQLite and on PostgreSQL (after
// a restart every acknowledged write is there, SQLite passes its integrity check, and every
// node reconnects with its addresses); and a full disk under SQLite (RLIMIT_FSIZE: writes fail
// with a clear 507, the server stays up, nothing acknowledged is lost, no corruption).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { NodeClient } from '../../src/client/index.js';
import { createTestDatabase, selectedDialects, type TestDatabase } from '../../src/store/testing.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';

interface Acknowledged { readonly names: string[]; readonly refused: Array<{ status: number; code: string }> }

/** Creates users over the API as fast as answers come, until `stop()`; records what was acknowledged. */
function writeUsers(server: ServerProcess, apiKey: string, prefix: string, displayName = ''): { stop(): Promise<Acknowledged> } {
  const acknowledged: Acknowledged = { names: [], refused: [] };
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const name = `${prefix}${i}`;
      try {
        const res = await fetch(`${server.url}/api/v1/users`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name, ...(displayName !== '' ? { display_name: displayName } : {}) }),
        });
        const body = await res.json() as { error?: { code: string } };
        if (res.status === 201 || res.status === 200) acknowledged.names.push(name);
        else acknowledged.refused.push({ status: res.status, code: body.error?.code ?? '' });
      } catch {
        // The server died under us: this write was not acknowledged.
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  return { async stop() { running = false; await loop; return acknowledged; } };
}

async function userNames(server: ServerProcess): Promise<Set<string>> {
  const list = JSON.parse(await server.cli(['users', 'list', '--output', 'json'])) as Array<{ name: string }>;
  return new Set(list.map((u) => u.name));
}

async function devices(server: ServerProcess, count: number): Promise<NodeClient[]> {
  const authKey = (JSON.parse(await server.cli(['preauthkeys', 'create', '--user', 'owner', '--reusable', '--output', 'json'])) as { key: string }).key;
  const clients: NodeClient[] = [];
  for (let i = 0; i < count; i++) {
    const client = new NodeClient({ serverUrl: server.url, hostname: `dev-${i}` });
    await client.loginWithAuthKey(authKey);
    await client.startMap();
    await client.waitFor('a netmap', (nm) => nm.self !== null, 10_000);
    clients.push(client);
  }
  return clients;
}

for (const dialect of selectedDialects()) {
  describe(`SIGKILL during writes on ${dialect}`, () => {
    let database: TestDatabase | null = null;
    let server: ServerProcess | null = null;
    after(async () => {
      await server?.stop();
      await database?.cleanup();
    });

    it('loses no acknowledged write, keeps the database sound, and every node reconnects with its addresses', async () => {
      const extra = ['limits: { api_requests_per_minute_per_key: 0 }'];
      if (dialect === 'postgres') {
        database = await createTestDatabase('postgres');
        assert.equal(database.database.type, 'postgres');
        extra.push(`database: { type: postgres, postgres: { url: ${JSON.stringify(database.database.postgres.url)} } }`);
      }
      server = await startServerProcess({ extraConfig: extra });
      await server.cli(['users', 'create', 'owner']);
      const apiKey = (await server.cli(['apikeys', 'create'])).trim();
      const clients = await devices(server, 4);
      const addresses = clients.map((c) => c.netmap.self!.Addresses);
      try {
        const writer = writeUsers(server, apiKey, 'crash');
        await new Promise((r) => setTimeout(r, 1_500));
        await server.kill();
        const { names } = await writer.stop();
        assert.ok(names.length > 5, `writes were acknowledged before the kill (${names.length})`);

        if (dialect === 'sqlite') {
          const db = new BetterSqlite3(join(server.dataDir, 'headway.sqlite'));
          try {
            assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
          } finally {
            db.close();
          }
        }
        await server.restart();
        const present = await userNames(server);
        const lost = names.filter((n) => !present.has(n));
        assert.deepEqual(lost, [], 'every acknowledged user is there after the restart');

        for (const [i, client] of clients.entries()) {
          await client.stopMap();
          await client.startMap();
          await client.waitFor('its netmap again', (nm) => nm.self !== null && nm.peers.size === clients.length - 1, 10_000);
          assert.deepEqual(client.netmap.self!.Addresses, addresses[i], `dev-${i} keeps its addresses`);
        }
      } finally {
        for (const c of clients) await c.close();
      }
    });
  });
}

describe('a full disk under SQLite', () => {
  let server: ServerProcess | null = null;
  after(async () => { await server?.stop(); });

  it('answers writes with 507 HW_STORE_DISK_FULL, stays up, and loses nothing acknowledged', async () => {
    // Start without a limit (migrations, keys), then restart with files capped near their size.
    server = await startServerProcess({ extraConfig: ['limits: { api_requests_per_minute_per_key: 0 }'] });
    await server.cli(['users', 'create', 'owner']);
    const apiKey = (await server.cli(['apikeys', 'create'])).trim();
    await server.kill();
    await server.restart({ fileSizeLimitBytes: 1 << 20 });

    const writer = writeUsers(server, apiKey, 'full', 'x'.repeat(250));
    const deadline = Date.now() + 60_000;
    let result: Acknowledged | null = null;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      if (!server.alive()) break;
      const probe = await fetch(`${server.url}/api/v1/users`, {
        method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `probe${Date.now()}`, display_name: 'y'.repeat(250) }),
      });
      await probe.text();
      if (probe.status === 507) break;
    }
    result = await writer.stop();
    assert.ok(server.alive(), `the server survived a full disk:\n${server.log().slice(-2000)}`);
    assert.ok(result.names.length > 0, 'some writes succeeded before the disk filled');
    const refusals = result.refused.filter((r) => r.status === 507);
    assert.ok(refusals.length > 0, `writes were refused with 507 (saw ${JSON.stringify(result.refused.slice(0, 3))})`);
    assert.ok(refusals.every((r) => r.code === 'HW_STORE_DISK_FULL'));
    assert.ok(await server.healthy(), 'still answering');
    assert.ok(result.refused.every((r) => r.status === 507), `no other failure: ${JSON.stringify(result.refused.filter((r) => r.status !== 507).slice(0, 3))}`);

    // Space again: restart without the limit; nothing acknowledged is missing, the file is sound.
    await server.kill();
    const db = new BetterSqlite3(join(server.dataDir, 'headway.sqlite'));
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      db.close();
    }
    await server.restart();
    const present = await userNames(server);
    assert.deepEqual(result.names.filter((n) => !present.has(n)), []);
  });
});
