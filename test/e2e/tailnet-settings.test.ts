// Tailnet settings in a running server: the auto-update setting reaches every connected node
// as `default-auto-update` in its self capabilities, as a delta (a new self node, no peer
// list, no filter), and only that tailnet's nodes hear it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../../src/client/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';

const admin = { name: 'test' };

async function device(ts: TestServer, hostname: string, key: string): Promise<NodeClient> {
  const client = new NodeClient({ serverUrl: ts.server.url, hostname, capVersion: 130 });
  await client.loginWithAuthKey(key);
  await client.startMap();
  await client.waitFor('a netmap', (nm) => nm.self !== null);
  return client;
}

const autoUpdate = (client: NodeClient): unknown => client.netmap.self?.CapMap?.['default-auto-update'];

describe('tailnet settings in a running server', () => {
  it('sends a change of the auto-update setting to every node as a self delta', async () => {
    const ts = await startTestServer();
    const ann = await ts.createUser('ann');
    const ben = await ts.createUser('ben');
    const clients = [await device(ts, 'ann-pc', await ts.authKey(ann)), await device(ts, 'ben-pc', await ts.authKey(ben)), await device(ts, 'ben-phone', await ts.authKey(ben))];
    try {
      for (const c of clients) {
        await c.waitFor('every peer', (nm) => nm.peers.size === 2);
        assert.deepEqual(autoUpdate(c), [false], 'the setting is off by default and still sent');
      }
      const seen = clients.map((c) => c.received.length);
      await ts.defaultTailnet.updateSettings({ autoUpdate: true }, admin);
      for (const [i, c] of clients.entries()) {
        await c.waitFor('default-auto-update [true]', () => JSON.stringify(autoUpdate(c)) === '[true]');
        const after = c.received.slice(seen[i]);
        const carrier = after.find((m) => JSON.stringify(m.Node?.CapMap?.['default-auto-update']) === '[true]');
        assert.ok(carrier !== undefined, 'a message carried the new self node');
        for (const m of after) {
          assert.equal(m.Peers ?? null, null, 'no full peer list');
          assert.equal(m.PacketFilter ?? null, null, 'no filter resent');
          assert.equal(m.PacketFilters ?? null, null, 'no filter resent');
        }
        assert.equal(c.netmap.peers.size, 2, 'peers kept');
      }
      await ts.defaultTailnet.updateSettings({ autoUpdate: false }, admin);
      for (const c of clients) await c.waitFor('default-auto-update [false] again', () => JSON.stringify(autoUpdate(c)) === '[false]');
    } finally {
      for (const c of clients) await c.close();
      await ts.cleanup();
    }
  });

  it('changes only the tailnet whose setting changed', async () => {
    const ts = await startTestServer();
    const ann = await ts.createUser('ann');
    const a = await device(ts, 'ann-pc', await ts.authKey(ann));
    try {
      const lab = await ts.server.state.createTailnet('lab', admin);
      await lab.updateSettings({ autoUpdate: true }, admin);
      assert.deepEqual(lab.settings, { autoUpdate: true });
      // A change elsewhere must not reach this node. A later change of its own tailnet (a
      // policy) is queued behind anything the lab change could have caused here.
      await ts.defaultTailnet.setPolicy(JSON.stringify({ acls: [{ action: 'accept', src: ['*'], dst: ['*:22'] }] }), admin, { persist: true });
      await a.waitFor('the new filter', (nm) => nm.packetFilter.some((r) => r.DstPorts?.some((d) => d.Ports.First === 22)));
      assert.deepEqual(autoUpdate(a), [false]);
      assert.deepEqual(ts.defaultTailnet.settings, { autoUpdate: false });
    } finally {
      await a.close();
      await ts.cleanup();
    }
  });
});
