// Tailnet services end to end: the embedded DERP relay and STUN, the DERP map from files and
// URLs, MagicDNS and split DNS, subnet routes with auto-approval and HA failover, exit nodes,
// ephemeral nodes, renames. A real server on port 0, our protocol and DERP clients.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { NodeClient } from '../../src/client/index.js';
import { DerpClient } from '../../src/client/derp/index.js';
import { Curve25519PrivateKey } from '../../src/key/index.js';
import { parseBindingResponse, stunBindingRequest } from '../../src/derp/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';

const admin = { name: 'test' };

async function device(ts: TestServer, hostname: string, key: string, extra: { capVersion?: number; routes?: string[]; ephemeral?: boolean } = {}): Promise<NodeClient> {
  const client = new NodeClient({
    serverUrl: ts.server.url,
    hostname,
    capVersion: extra.capVersion ?? 130,
    ...(extra.routes ? { hostinfo: { RoutableIPs: extra.routes } } : {}),
  });
  await client.loginWithAuthKey(key, extra.ephemeral ? { ephemeral: true } : {});
  await client.startMap();
  await client.waitFor('a netmap', (nm) => nm.self !== null);
  return client;
}

describe('embedded DERP and STUN', () => {
  let ts: TestServer;
  before(async () => { ts = await startTestServer(); });
  after(async () => { await ts.cleanup(); });

  it('relays packets between two nodes of the tailnet and refuses a key it does not know', async () => {
    const user = await ts.createUser('dora');
    const key = await ts.authKey(user);
    const a = await device(ts, 'relay-a', key);
    const b = await device(ts, 'relay-b', key);
    const url = `${ts.server.url}/derp`;
    const derpA = await DerpClient.connect({ url, privateKey: a.nodeKey });
    const derpB = await DerpClient.connect({ url, privateKey: b.nodeKey });
    try {
      const received = new Promise<{ src: string; packet: Buffer }>((resolve) => derpB.onPacket((src, packet) => resolve({ src, packet })));
      const payload = randomBytes(1200);
      derpA.sendPacket(b.nodePublicKey, payload);
      const got = await received;
      assert.equal(got.src, a.nodePublicKey);
      assert.deepEqual(got.packet, payload);
      const back = new Promise<Buffer>((resolve) => derpA.onPacket((_src, packet) => resolve(packet)));
      derpB.sendPacket(a.nodePublicKey, Buffer.from('pong'));
      assert.equal((await back).toString(), 'pong');
      await assert.rejects(DerpClient.connect({ url, privateKey: Curve25519PrivateKey.generate(), timeoutMs: 2_000 }), 'a key that is no node of any tailnet is refused');
    } finally {
      derpA.close();
      derpB.close();
      await a.close();
      await b.close();
    }
  });

  it('answers a STUN binding request with the address it came from', async () => {
    const port = ts.server.stun!.address().port;
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    try {
      const id = randomBytes(12);
      const answer = new Promise<Buffer>((resolve) => socket.once('message', resolve));
      socket.send(stunBindingRequest(id), port, '127.0.0.1');
      const parsed = parseBindingResponse(await answer);
      assert.ok(parsed);
      assert.deepEqual(parsed.transactionId, id);
      assert.equal(parsed.address, '127.0.0.1');
      assert.equal(parsed.port, (socket.address() as AddressInfo).port);
      socket.send(Buffer.from('garbage'), port, '127.0.0.1'); // dropped silently, server unharmed
      const again = new Promise<Buffer>((resolve) => socket.once('message', resolve));
      socket.send(stunBindingRequest(randomBytes(12)), port, '127.0.0.1');
      assert.ok(parseBindingResponse(await again));
    } finally {
      socket.close();
    }
  });

  it('puts the embedded region in every netmap', async () => {
    const user = await ts.createUser('eve');
    const client = await device(ts, 'mapper', await ts.authKey(user));
    try {
      const region = client.netmap.derpMap?.Regions['999'];
      assert.ok(region, 'region 999');
      assert.equal(region.Nodes[0]?.HostName, '127.0.0.1');
      assert.equal(region.Nodes[0]?.STUNPort, ts.server.stun!.address().port);
    } finally {
      await client.close();
    }
  });
});

describe('DERP map from files and URLs', () => {
  it('merges a region from a file and one from a URL into the netmap', async () => {
    const remote = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ Regions: { 901: { RegionID: 901, RegionCode: 'url', RegionName: 'From URL', Nodes: [{ Name: '901a', RegionID: 901, HostName: 'derp.url.example' }] } } }));
    });
    await new Promise<void>((r) => remote.listen(0, '127.0.0.1', () => r()));
    const tsHolder: { ts?: TestServer } = {};
    try {
      const dir = (await import('node:fs/promises')).mkdtemp;
      const tmp = await dir(join((await import('node:os')).tmpdir(), 'headway-derpmap-'));
      const file = join(tmp, 'derp.yaml');
      await writeFile(file, 'regions:\n  902:\n    regionid: 902\n    regioncode: file\n    regionname: From file\n    nodes:\n      - name: 902a\n        regionid: 902\n        hostname: derp.file.example\n');
      const url = `http://127.0.0.1:${(remote.address() as AddressInfo).port}/derpmap`;
      tsHolder.ts = await startTestServer({ config: { derp: { paths: [file], urls: [url] } } });
      const ts = tsHolder.ts;
      const client = await device(ts, 'maps', await ts.authKey(await ts.createUser('fay')));
      try {
        const regions = client.netmap.derpMap?.Regions ?? {};
        assert.deepEqual(Object.keys(regions).sort(), ['901', '902', '999']);
        assert.equal(regions['901']?.Nodes[0]?.HostName, 'derp.url.example');
        assert.equal(regions['902']?.Nodes[0]?.HostName, 'derp.file.example');
      } finally {
        await client.close();
      }
    } finally {
      await tsHolder.ts?.cleanup();
      remote.close();
    }
  });
});

describe('DNS and DERP map changes', () => {
  it('delivers a changed extra-records file and a changed DERP map to connected nodes', async () => {
    let regionName = 'First';
    const remote = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ Regions: { 905: { RegionID: 905, RegionCode: 'r', RegionName: regionName, Nodes: [{ Name: '905a', RegionID: 905, HostName: 'derp.example' }] } } }));
    });
    await new Promise<void>((r) => remote.listen(0, '127.0.0.1', () => r()));
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'headway-changes-'));
    const records = join(dir, 'records.json');
    await writeFile(records, JSON.stringify([{ name: 'db.headway.internal', type: 'A', value: '100.64.9.9' }]));
    const holder: { ts?: TestServer } = {};
    try {
      holder.ts = await startTestServer({ config: { dns: { extra_records_path: records }, derp: { urls: [`http://127.0.0.1:${(remote.address() as AddressInfo).port}/map`] } } });
      const ts = holder.ts;
      const client = await device(ts, 'watcher', await ts.authKey(await ts.createUser('kim')));
      try {
        assert.equal(client.netmap.dnsConfig?.ExtraRecords?.[0]?.Value, '100.64.9.9');
        assert.equal(client.netmap.derpMap?.Regions['905']?.RegionName, 'First');
        await writeFile(records, JSON.stringify([{ name: 'db.headway.internal', type: 'A', value: '100.64.9.10' }]));
        await client.waitFor('the new record', (nm) => nm.dnsConfig?.ExtraRecords?.[0]?.Value === '100.64.9.10');
        regionName = 'Second';
        assert.equal(await ts.server.derpMap.refresh(), true);
        await client.waitFor('the new region name', (nm) => nm.derpMap?.Regions['905']?.RegionName === 'Second');
        assert.ok(client.received.some((m) => m.DERPMap !== undefined && m.Node === undefined), 'as a delta, not a new netmap');
      } finally {
        await client.close();
      }
    } finally {
      await holder.ts?.cleanup();
      remote.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('MagicDNS', () => {
  it('sends MagicDNS names, split DNS and extra records, and renames reach the peers', async () => {
    const ts = await startTestServer({
      config: {
        dns: {
          magic_dns: true,
          base_domain: 'tail.example',
          nameservers: { global: ['9.9.9.9'], split: { 'corp.example': ['10.0.0.53'] } },
          search_domains: ['corp.example'],
          extra_records: [{ name: 'grafana.tail.example', type: 'A', value: '100.64.0.99' }],
        },
      },
    });
    const key = await ts.authKey(await ts.createUser('gil'));
    const a = await device(ts, 'laptop', key);
    const b = await device(ts, 'laptop', key);
    try {
      assert.equal(a.netmap.self?.Name, 'laptop.tail.example.');
      assert.equal(b.netmap.self?.Name, 'laptop-1.tail.example.', 'a second laptop becomes laptop-1');
      const dns = a.netmap.dnsConfig!;
      assert.equal(dns.Proxied, true);
      assert.deepEqual(dns.Domains, ['tail.example', 'corp.example']);
      assert.deepEqual(dns.Routes?.['corp.example'], [{ Addr: '10.0.0.53' }]);
      assert.deepEqual(dns.ExtraRecords, [{ Name: 'grafana.tail.example', Type: 'A', Value: '100.64.0.99' }]);
      assert.equal(a.netmap.domain, 'tail.example');

      const id = ts.server.state.nodeByKey(b.nodePublicKey)!.node.id;
      await ts.defaultTailnet.renameNode(id, 'workstation', admin);
      await a.waitFor('the renamed peer', (nm) => nm.peerByName('workstation') !== undefined);
      await b.waitFor('its own new name', (nm) => nm.self?.Name === 'workstation.tail.example.');
    } finally {
      await a.close();
      await b.close();
      await ts.cleanup();
    }
  });
});

describe('subnet routes and exit nodes', () => {
  it('approves routes by policy and by admin, elects one primary and fails over when it goes offline', async () => {
    const ts = await startTestServer();
    const helen = await ts.createUser('helen');
    await ts.defaultTailnet.setPolicy(JSON.stringify({
      tagOwners: { 'tag:router': ['helen@example.com'] },
      autoApprovers: { routes: { '10.20.0.0/16': ['tag:router'] } },
      acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }],
    }), admin, { persist: true });
    const routerKey = await ts.authKey(null, { tags: ['tag:router'] });
    const userKey = await ts.authKey(helen);
    const r1 = await device(ts, 'router-1', routerKey, { routes: ['10.20.1.0/24'] });
    const r2 = await device(ts, 'router-2', routerKey, { routes: ['10.20.1.0/24'] });
    const r3 = await device(ts, 'router-3', routerKey, { routes: ['192.168.7.0/24'] });
    const viewer = await device(ts, 'viewer', userKey);
    try {
      const stateOf = (c: NodeClient) => ts.server.state.nodeByKey(c.nodePublicKey)!.node;
      assert.deepEqual(stateOf(r1).approvedRoutes, ['10.20.1.0/24'], 'auto-approved by the policy');
      assert.deepEqual(stateOf(r3).approvedRoutes, [], 'no approver for 192.168.7.0/24');
      await viewer.waitFor('router-1 primary', (nm) => nm.peerByName('router-1')?.PrimaryRoutes?.includes('10.20.1.0/24') === true);
      assert.ok(viewer.netmap.peerByName('router-1')?.AllowedIPs?.includes('10.20.1.0/24'));
      assert.ok(!viewer.netmap.peerByName('router-2')?.AllowedIPs?.includes('10.20.1.0/24'), 'only the primary carries the route');

      await ts.defaultTailnet.updateNode(stateOf(r3).id, { approvedRoutes: ['192.168.7.0/24'] }, admin);
      await viewer.waitFor('router-3 route approved by admin', (nm) => nm.peerByName('router-3')?.AllowedIPs?.includes('192.168.7.0/24') === true);

      await r1.stopMap();
      await viewer.waitFor('failover to router-2', (nm) => nm.peerByName('router-2')?.PrimaryRoutes?.includes('10.20.1.0/24') === true, 5_000);
      assert.ok(!viewer.netmap.peerByName('router-1')?.AllowedIPs?.includes('10.20.1.0/24'));
    } finally {
      for (const c of [r1, r2, r3, viewer]) await c.close();
      await ts.cleanup();
    }
  });

  it('offers an approved exit node to the nodes the policy lets use the internet', async () => {
    const ts = await startTestServer();
    const ivy = await ts.createUser('ivy');
    await ts.defaultTailnet.setPolicy(JSON.stringify({
      tagOwners: { 'tag:exit': ['ivy@example.com'] },
      autoApprovers: { exitNode: ['tag:exit'] },
      acls: [{ action: 'accept', src: ['autogroup:member'], dst: ['autogroup:internet:*'] }],
    }), admin, { persist: true });
    const exit = await device(ts, 'exit', await ts.authKey(null, { tags: ['tag:exit'] }), { routes: ['0.0.0.0/0', '::/0'] });
    const user = await device(ts, 'phone', await ts.authKey(ivy));
    try {
      await user.waitFor('the exit node with its default routes', (nm) => {
        const peer = nm.peerByName('exit');
        return peer?.AllowedIPs?.includes('0.0.0.0/0') === true && peer.AllowedIPs.includes('::/0');
      });
      assert.ok(!(user.netmap.peerByName('exit')?.PrimaryRoutes ?? []).includes('0.0.0.0/0'), 'exit routes are not primary routes');
      // The rule's sources are the members, so it reaches the exit node once the phone joined.
      await exit.waitFor('the internet rule', (nm) => nm.packetFilter.some((r) => r.DstPorts?.some((d) => d.IP.startsWith('0.0.0.0-'))));
    } finally {
      await exit.close();
      await user.close();
      await ts.cleanup();
    }
  });
});

describe('ephemeral nodes', () => {
  it('deletes an ephemeral node after it has been offline for the inactivity timeout, and its peers are told', async () => {
    const ts = await startTestServer({ config: { ephemeral_node_inactivity_timeout: '300ms' } });
    const key = await ts.authKey(await ts.createUser('jon'));
    const stays = await device(ts, 'stays', key);
    const fleeting = await device(ts, 'fleeting', key, { ephemeral: true });
    try {
      await stays.waitFor('the ephemeral peer', (nm) => nm.peerByName('fleeting') !== undefined);
      const id = ts.server.state.nodeByKey(fleeting.nodePublicKey)!.node.id;
      await fleeting.stopMap();
      await stays.waitFor('the ephemeral peer to vanish', (nm) => nm.peerByName('fleeting') === undefined, 5_000);
      assert.equal(ts.defaultTailnet.node(id), undefined);
    } finally {
      await stays.close();
      await fleeting.close();
      await ts.cleanup();
    }
  });
});

