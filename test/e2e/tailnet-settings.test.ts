// Tailnet settings in a running server: the auto-update setting reaches every connected node
// as `default-auto-update` in its self capabilities, as a delta (a new self node, no peer
// list, no filter), and only that tailnet's nodes hear it. A tailnet's own DNS and default key
// expiry, set through PATCH /api/v1/settings, reach its devices; bad values get the field.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TAILNET_SETTINGS } from '../../src/model/index.js';
import { NodeClient } from '../../src/client/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';
import { createApiHandler } from '../../src/api/index.js';
import { sendTestRequest } from '../../src/api/testing.js';

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
      assert.deepEqual(lab.settings, { ...DEFAULT_TAILNET_SETTINGS, autoUpdate: true });
      // A change elsewhere must not reach this node. A later change of its own tailnet (a
      // policy) is queued behind anything the lab change could have caused here.
      await ts.defaultTailnet.setPolicy(JSON.stringify({ acls: [{ action: 'accept', src: ['*'], dst: ['*:22'] }] }), admin, { persist: true });
      await a.waitFor('the new filter', (nm) => nm.packetFilter.some((r) => r.DstPorts?.some((d) => d.Ports.First === 22)));
      assert.deepEqual(autoUpdate(a), [false]);
      assert.deepEqual(ts.defaultTailnet.settings, { ...DEFAULT_TAILNET_SETTINGS, autoUpdate: false });
    } finally {
      await a.close();
      await ts.cleanup();
    }
  });

  it('sends a tailnet\'s own DNS to its devices at once, and applies its default key expiry', async () => {
    const ts = await startTestServer({
      config: { dns: { magic_dns: true, base_domain: 'hw.test', nameservers: { global: ['1.1.1.1'] } } },
      api: (deps) => createApiHandler({ ...deps, validateResponses: true }),
    });
    const ann = await ts.createUser('ann');
    const a = await device(ts, 'ann-pc', await ts.authKey(ann, { reusable: true }));
    const unix = (method: string, path: string, body?: unknown) =>
      sendTestRequest({ url: ts.server.url, socketPath: ts.server.socketPath }, method, path, { transport: 'unix', ...(body !== undefined ? { body } : {}) });
    try {
      assert.deepEqual(a.netmap.dnsConfig?.FallbackResolvers, [{ Addr: '1.1.1.1' }], 'the config file\'s DNS by default');
      const bad = await unix('PATCH', '/api/v1/settings', { dns: { magic_dns: true, override_local_dns: true, nameservers: ['9.9.9.9', '8.8.8'], split_dns: {}, search_domains: [], extra_records: [] } });
      assert.equal(bad.status, 400);
      assert.equal((bad.json as { error: { message: string } }).error.message, 'body.dns.nameservers[1]: "8.8.8" is not an IP address or an https:// URL');
      const dns = {
        magic_dns: true, override_local_dns: true, nameservers: ['9.9.9.9'], split_dns: { 'corp.example': ['10.0.0.53'] },
        search_domains: ['corp.example'], extra_records: [{ name: 'git.corp.example', type: 'A', value: '10.0.0.7' }],
      };
      const ok = await unix('PATCH', '/api/v1/settings', { dns, default_key_expiry_seconds: 7 * 86_400, display_name: 'Ann & co' });
      assert.equal(ok.status, 200, ok.text);
      const body = ok.json as Record<string, unknown>;
      assert.deepEqual([body['dns_source'], body['default_key_expiry_seconds'], body['display_name']], ['tailnet', 604_800, 'Ann & co']);
      await a.waitFor('the tailnet\'s own DNS', () => JSON.stringify(a.netmap.dnsConfig?.Resolvers) === JSON.stringify([{ Addr: '9.9.9.9' }]));
      assert.deepEqual(a.netmap.dnsConfig?.Routes?.['corp.example'], [{ Addr: '10.0.0.53' }]);
      assert.ok(a.netmap.dnsConfig?.Domains?.includes('corp.example'));
      assert.deepEqual(a.netmap.dnsConfig?.ExtraRecords, [{ Name: 'git.corp.example', Type: 'A', Value: '10.0.0.7' }]);
      // A device registered now gets the tailnet's key lifetime, not the config's (never).
      const before = Date.now();
      await device(ts, 'ann-phone', await ts.authKey(ann)).then((c) => c.close());
      const phone = [...ts.defaultTailnet.nodes()].find((n) => n.hostname === 'ann-phone')!;
      const lifetime = phone.keyExpiry!.getTime() - before;
      assert.ok(lifetime > 6.9 * 86_400_000 && lifetime < 7.1 * 86_400_000, `key lifetime ${lifetime} ms`);
      // MagicDNS off: the netmap's Domain and the config change; null goes back to the config.
      assert.equal((await unix('PATCH', '/api/v1/settings', { dns: { ...dns, magic_dns: false } })).status, 200);
      await a.waitFor('MagicDNS off', () => a.netmap.dnsConfig?.Proxied !== true);
      assert.equal((await unix('PATCH', '/api/v1/settings', { dns: null })).status, 200);
      await a.waitFor('the config\'s DNS again', () => JSON.stringify(a.netmap.dnsConfig?.FallbackResolvers) === JSON.stringify([{ Addr: '1.1.1.1' }]));
      // Persisted: after a restart the tailnet keeps its key lifetime and display name.
      await ts.restart();
      const again = (await unix('GET', '/api/v1/settings')).json as Record<string, unknown>;
      assert.deepEqual([again['dns_source'], again['default_key_expiry_seconds'], again['display_name']], ['config', 604_800, 'Ann & co']);
    } finally {
      await a.close();
      await ts.cleanup();
    }
  });
});
