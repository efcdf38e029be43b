// End to end over real sockets: our protocol client (a black box that speaks TS2021, HTTP/2 and
// the zstd map stream) against a real Headway server on port 0 with a real SQLite database.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../../src/client/index.js';
import type { NodeId } from '../../src/model/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';
import type * as tailcfg from '../../src/tailcfg/index.js';

const admin = { name: 'test' };

function addressesOf(ts: TestServer, client: NodeClient): string[] {
  const found = ts.server.state.nodeByKey(client.nodePublicKey);
  assert.ok(found, `node of ${client.hostinfo.Hostname} exists`);
  return [`${found.node.ipv4}/32`, `${found.node.ipv6}/128`];
}

function nodeIdOf(ts: TestServer, client: NodeClient): NodeId {
  const found = ts.server.state.nodeByKey(client.nodePublicKey);
  assert.ok(found);
  return found.node.id;
}

async function connected(ts: TestServer, hostname: string, key: string, capVersion = 109): Promise<NodeClient> {
  const client = new NodeClient({ serverUrl: ts.server.url, hostname, capVersion });
  await client.loginWithAuthKey(key);
  await client.startMap();
  await client.waitFor('the first netmap', (nm) => nm.self !== null);
  return client;
}

describe('control protocol end to end', () => {
  let ts: TestServer;
  let key: string;
  const clients: NodeClient[] = [];

  before(async () => {
    ts = await startTestServer();
    const alice = await ts.createUser('alice');
    key = await ts.authKey(alice, { reusable: true });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await ts.cleanup();
  });

  it('lets two clients register with a pre-auth key and see each other with the right addresses and keys', async () => {
    const laptop = await connected(ts, 'laptop', key, 109);
    const desktop = await connected(ts, 'desktop', key, 51);
    clients.push(laptop, desktop);
    // The disco key arrives with each device's first map request, just after it registered.
    await laptop.waitFor('desktop as a peer', (nm) => nm.peerByName('desktop')?.DiscoKey === desktop.discoPublicKey);
    await desktop.waitFor('laptop as a peer', (nm) => nm.peerByName('laptop')?.DiscoKey === laptop.discoPublicKey);

    const peerOfLaptop = laptop.netmap.peerByName('desktop')!;
    assert.equal(peerOfLaptop.Key, desktop.nodePublicKey);
    assert.equal(peerOfLaptop.DiscoKey, desktop.discoPublicKey);
    assert.deepEqual(peerOfLaptop.Addresses, addressesOf(ts, desktop));
    assert.deepEqual(peerOfLaptop.AllowedIPs, addressesOf(ts, desktop));
    assert.deepEqual(laptop.netmap.self?.Addresses, addressesOf(ts, laptop));
    assert.equal(laptop.netmap.self?.MachineAuthorized, true);
    assert.equal(laptop.netmap.self?.Name, 'laptop.headway.internal.');
    assert.ok(laptop.netmap.derpMap && Object.keys(laptop.netmap.derpMap.Regions).length > 0, 'the DERP map names a region');
    assert.ok(laptop.netmap.userProfiles.size > 0);

    // Each generation gets its own form of the filter: 1.78 named chunks, 1.34 the plain list.
    const first = (c: NodeClient) => c.received.find((m) => m.Node !== undefined)!;
    assert.ok(Object.keys(first(laptop).PacketFilters ?? {}).length > 0, 'capver 109 gets named PacketFilters chunks');
    assert.equal(first(laptop).PacketFilter, undefined);
    assert.ok(Array.isArray(first(desktop).PacketFilter), 'capver 51 gets PacketFilter');
    assert.deepEqual(laptop.netmap.packetFilter, [{ SrcIPs: ['*'], DstPorts: [{ IP: '*', Ports: { First: 0, Last: 65535 } }] }], 'no policy = allow all');

    // A device's own registration is in the audit log with where it connected from.
    const audit = await ts.server.state.store.read.audit.list({ tailnetId: ts.defaultTailnet.id });
    const registered = audit.filter((e) => e.action === 'node.register');
    assert.equal(registered.length, 2);
    for (const entry of registered) {
      assert.match(entry.actor, /^machine:/);
      assert.equal(entry.from, '127.0.0.1');
    }
  });

  it('delivers an endpoint change to the peer as a PeersChangedPatch', async () => {
    const [laptop, desktop] = clients as [NodeClient, NodeClient];
    const before = desktop.received.length;
    assert.equal(await laptop.liteUpdate({ endpoints: ['198.51.100.7:41641', '192.168.1.7:41641'] }), 200);
    await desktop.waitFor('laptop endpoints', (nm) => nm.peerByName('laptop')?.Endpoints?.[0] === '198.51.100.7:41641');
    const laptopId = nodeIdOf(ts, laptop);
    const patches = desktop.received.slice(before).flatMap((m) => m.PeersChangedPatch ?? []);
    assert.ok(patches.some((p) => p.NodeID === laptopId && p.Endpoints?.length === 2), 'the change came as a patch');
    assert.ok(desktop.received.slice(before).every((m) => !(m.PeersChanged ?? []).some((p) => p.ID === laptopId)), 'not as a full peer');
  });

  it('streams the netmap and every change in order to a client with tiny HTTP/2 windows', async () => {
    // A 200-byte stream window and HTTP/2's default connection window: the server's map
    // frames must wait for the client's credit and arrive whole.
    const small = new NodeClient({ serverUrl: ts.server.url, hostname: 'small-window', capVersion: 109, http2Windows: { stream: 200, connection: null } });
    clients.push(small);
    await small.loginWithAuthKey(key);
    await small.startMap();
    await small.waitFor('the first netmap with both peers', (nm) => nm.self !== null && nm.peerByName('laptop') !== undefined && nm.peerByName('desktop') !== undefined);
    const laptop = clients[0]!;
    for (let i = 0; i < 10; i++) {
      assert.equal(await laptop.liteUpdate({ endpoints: [`198.51.100.8:${42_000 + i}`] }), 200);
    }
    await small.waitFor('the last endpoint of laptop', (nm) => nm.peerByName('laptop')?.Endpoints?.[0] === '198.51.100.8:42009');
    // The control connection still answers other requests on the same connection.
    assert.equal(await small.liteUpdate({ endpoints: ['198.51.100.9:41641'] }), 200);
    await laptop.waitFor('small-window endpoints', (nm) => nm.peerByName('small-window')?.Endpoints?.[0] === '198.51.100.9:41641');
    assert.equal(small.streamError, null);
  });

  it('takes endpoints from the streaming poll of a capver 51 client, not from its ReadOnly first poll', async () => {
    const [laptop, desktop] = clients as [NodeClient, NodeClient];
    await desktop.stopMap();
    await desktop.startMap({ endpoints: ['203.0.113.9:41641'] });
    await laptop.waitFor('desktop endpoints', (nm) => nm.peerByName('desktop')?.Endpoints?.[0] === '203.0.113.9:41641');
    await desktop.stopMap();
    await desktop.startMap({ readOnly: true });
    await desktop.waitFor('a netmap', (nm) => nm.self !== null);
    assert.deepEqual(ts.server.state.nodeByKey(desktop.nodePublicKey)?.node.endpoints, ['203.0.113.9:41641'], 'ReadOnly polls change nothing');
  });

  it('tells peers that a node went offline and came back', async () => {
    const [laptop, desktop] = clients as [NodeClient, NodeClient];
    await desktop.stopMap();
    await laptop.waitFor('desktop offline', (nm) => nm.peerByName('desktop')?.Online === false);
    assert.ok(laptop.received.some((m) => m.OnlineChange !== undefined), 'as an OnlineChange');
    await desktop.startMap();
    await laptop.waitFor('desktop online', (nm) => nm.peerByName('desktop')?.Online === true);
  });

  it('shows an expired key to the node itself and to its peers', async () => {
    const [laptop, desktop] = clients as [NodeClient, NodeClient];
    const tailnet = ts.defaultTailnet;
    await tailnet.expireNode(nodeIdOf(ts, desktop), admin);
    await desktop.waitFor('own expiry', (nm) => nm.self?.KeyExpiry !== undefined && Date.parse(nm.self.KeyExpiry) <= Date.now());
    await laptop.waitFor('peer expired', (nm) => {
      const peer = nm.peerByName('desktop');
      return peer?.KeyExpiry !== undefined && Date.parse(peer.KeyExpiry) <= Date.now();
    });
    // The client treats it as expired and must log in again; a register says so.
    const answer = await desktop.register();
    assert.equal(answer.NodeKeyExpired, true);
  });

  it('keeps the node, its id and addresses when an expired client rotates its key with a pre-auth key', async () => {
    const [, desktop] = clients as [NodeClient, NodeClient];
    const before = ts.server.state.nodeByKey(desktop.nodePublicKey)!.node;
    await desktop.stopMap();
    const oldKey = desktop.rotateNodeKey();
    const answer = await desktop.register({ authKey: key, oldNodeKey: oldKey });
    assert.equal(answer.Error, '');
    assert.equal(answer.MachineAuthorized, true);
    const after = ts.server.state.nodeByKey(desktop.nodePublicKey)?.node;
    assert.ok(after);
    assert.equal(after.id, before.id);
    assert.equal(after.ipv4, before.ipv4);
    assert.ok(after.keyExpiry === null || after.keyExpiry.getTime() > Date.now(), 'a fresh expiry');
    assert.equal(ts.server.state.nodeByKey(oldKey), undefined, 'the old key no longer names a node');
    await desktop.startMap();
    await desktop.waitFor('a netmap with the new key', (nm) => nm.self?.Key === desktop.nodePublicKey);
  });

  it('removes a deleted node from its peers and ends its own stream', async () => {
    const [laptop, desktop] = clients as [NodeClient, NodeClient];
    const desktopId = nodeIdOf(ts, desktop);
    await ts.defaultTailnet.deleteNode(desktopId, admin);
    await laptop.waitFor('desktop gone', (nm) => nm.peerByName('desktop') === undefined);
    assert.ok(laptop.received.some((m) => m.PeersRemoved?.includes(desktopId)), 'as PeersRemoved');
    await desktop.waitFor('its stream to end', () => desktop.streamEnded, 2_000).catch(() => undefined);
    assert.equal(desktop.streamEnded, true);
  });
});

describe('registration', () => {
  let ts: TestServer;
  before(async () => { ts = await startTestServer(); });
  after(async () => { await ts.cleanup(); });

  it('refuses unknown, used, expired and revoked keys with a message the client shows', async () => {
    const bob = await ts.createUser('bob');
    const client = new NodeClient({ serverUrl: ts.server.url, hostname: 'box' });
    try {
      assert.equal((await client.register({ authKey: 'hwkey-auth-nope-nope' })).Error, 'invalid pre auth key');
      const single = await ts.authKey(bob, { reusable: false });
      assert.equal((await client.register({ authKey: single })).Error, '');
      const other = new NodeClient({ serverUrl: ts.server.url, hostname: 'box2' });
      assert.equal((await other.register({ authKey: single })).Error, 'invalid pre auth key', 'single-use key used twice');
      const expired = await ts.authKey(bob, { expiresAt: new Date(Date.now() - 1000) });
      assert.equal((await other.register({ authKey: expired })).Error, 'invalid pre auth key');
      await other.close();
      assert.equal(ts.defaultTailnet.nodeCount, 1, 'refused logins leave no node behind');
    } finally {
      await client.close();
    }
  });

  it('completes an interactive login once an admin approves it', async () => {
    const carol = await ts.createUser('carol');
    const client = new NodeClient({ serverUrl: ts.server.url, hostname: 'tablet' });
    try {
      const first = await client.register();
      assert.match(first.AuthURL, /\/register\/[A-Za-z0-9_-]+$/);
      const page = await fetch(first.AuthURL);
      assert.equal(page.status, 200);
      const id = first.AuthURL.split('/').pop()!;
      assert.match(await page.text(), new RegExp(`headway nodes register --key ${id}`));
      const waiting = client.register({ followup: first.AuthURL });
      let settled = false;
      void waiting.then(() => { settled = true; });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(settled, false, 'the follow-up waits for the admin');
      await ts.server.state.approvePending(id, ts.defaultTailnet, { userId: carol.id, keyExpiry: null }, admin);
      const done = await waiting;
      assert.equal(done.MachineAuthorized, true);
      assert.equal(done.AuthURL, '');
      assert.equal(done.Login.LoginName, 'carol@example.com');
      await client.startMap();
      await client.waitFor('a netmap', (nm) => nm.self?.User === carol.id);
    } finally {
      await client.close();
    }
  });

  it('expires a node on logout and deletes an ephemeral one', async () => {
    const dan = await ts.createUser('dan');
    const keyed = await ts.authKey(dan);
    const normal = new NodeClient({ serverUrl: ts.server.url, hostname: 'normal' });
    const ephemeral = new NodeClient({ serverUrl: ts.server.url, hostname: 'ephemeral' });
    try {
      await normal.loginWithAuthKey(keyed);
      await ephemeral.loginWithAuthKey(keyed, { ephemeral: true });
      const ephemeralId = ts.server.state.nodeByKey(ephemeral.nodePublicKey)!.node.id;
      assert.equal((await normal.logout()).NodeKeyExpired, true);
      const expired = ts.server.state.nodeByKey(normal.nodePublicKey)!.node;
      assert.ok(expired.keyExpiry !== null && expired.keyExpiry.getTime() <= Date.now());
      await ephemeral.logout();
      assert.equal(ts.defaultTailnet.node(ephemeralId), undefined);
    } finally {
      await normal.close();
      await ephemeral.close();
    }
  });

  it('answers a bad map request with an error and keeps serving', async () => {
    const client = new NodeClient({ serverUrl: ts.server.url, hostname: 'stranger' });
    try {
      const control = await client.control();
      const unknown = await control.postJson('/machine/map', { Version: 109, NodeKey: client.nodePublicKey, Stream: true, Compress: 'zstd' });
      assert.equal(unknown.status, 404);
      const garbage = await control.request('/machine/map', '{"NodeKey": 12', { method: 'POST' });
      assert.equal(garbage.status, 400);
      const badKey = await control.postJson('/machine/register', { NodeKey: 'nodekey:xyz' });
      assert.equal(badKey.status, 400);
      assert.match(badKey.body.toString(), /NodeKey/);
      const health = await control.postJson('/machine/update-health', { Subsys: 'dns', Error: '' });
      assert.equal(health.status, 200);
      const notImplemented = await control.postJson('/machine/set-dns', {});
      assert.equal(notImplemented.status, 501);
    } finally {
      await client.close();
    }
  });
});

describe('client generations and faults', () => {
  it('sends the home DERP region as legacy DERP to old clients and as HomeDERP to new ones', async () => {
    const ts = await startTestServer();
    const key = await ts.authKey(await ts.createUser('gen'));
    const old = await connected(ts, 'old', key, 51);
    const mid = await connected(ts, 'mid', key, 109);
    const fresh = await connected(ts, 'fresh', key, 130);
    try {
      await fresh.liteUpdate({ hostinfo: { NetInfo: { PreferredDERP: 999 } } });
      await old.waitFor('legacy DERP', (nm) => nm.peerByName('fresh')?.DERP === '127.3.3.40:999');
      await mid.waitFor('legacy DERP', (nm) => nm.peerByName('fresh')?.DERP === '127.3.3.40:999');
      await mid.liteUpdate({ hostinfo: { NetInfo: { PreferredDERP: 999 } } });
      await fresh.waitFor('HomeDERP', (nm) => nm.peerByName('mid')?.HomeDERP === 999);
      const fullPeer = (c: NodeClient, name: string) => c.received.flatMap((m) => [...(m.Peers ?? []), ...(m.PeersChanged ?? [])]).filter((p) => p.Name.startsWith(`${name}.`));
      assert.ok(fullPeer(old, 'mid').every((p) => p.HomeDERP === undefined), 'capver 51 never gets HomeDERP');
      assert.ok(fullPeer(old, 'mid').every((p) => p.CapMap === undefined), 'capver 51 gets no CapMap');
    } finally {
      for (const c of [old, mid, fresh]) await c.close();
      await ts.cleanup();
    }
  });

  it('cleans up after clients that vanish mid-stream: no session or connection is left behind', async () => {
    const ts = await startTestServer();
    const key = await ts.authKey(await ts.createUser('ghost'));
    const survivors = await connected(ts, 'survivor', key);
    const ghosts: NodeClient[] = [];
    try {
      for (let i = 0; i < 5; i++) ghosts.push(await connected(ts, `ghost-${i}`, key));
      const pipeline = ts.server.pipeline(ts.defaultTailnet.id);
      assert.equal(pipeline.hub.sessionCount, 6);
      // Destroy the sockets without any goodbye.
      for (const g of ghosts) (await g.control()).noise.destroy();
      const deadline = Date.now() + 5_000;
      while ((pipeline.hub.sessionCount > 1 || ts.server.control.stats().connectionsOpen > 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(pipeline.hub.sessionCount, 1);
      assert.equal(ts.server.control.stats().connectionsOpen, 1);
      await survivors.liteUpdate({ endpoints: ['192.0.2.50:1'] });
      const other = await connected(ts, 'late', key);
      await other.waitFor('the survivor', (nm) => nm.peerByName('survivor')?.Endpoints?.[0] === '192.0.2.50:1');
      await other.close();
    } finally {
      await survivors.close();
      for (const g of ghosts) await g.close().catch(() => undefined);
      await ts.cleanup();
    }
  });
});

describe('restart', () => {
  it('keeps the nodes, and clients resume without logging in again', async () => {
    const ts = await startTestServer();
    const erin = await ts.createUser('erin');
    const key = await ts.authKey(erin);
    const a = await connected(ts, 'alpha', key);
    const b = await connected(ts, 'beta', key);
    try {
      await a.waitFor('beta', (nm) => nm.peerByName('beta') !== undefined);
      const before = ts.server.state.nodeByKey(a.nodePublicKey)!.node;
      await ts.restart();
      await a.waitFor('the stream to end', () => a.streamEnded);
      for (const c of [a, b]) {
        await c.close();
        const answer = await c.register();
        assert.equal(answer.MachineAuthorized, true, 'a restart is not a new login');
        assert.equal(answer.AuthURL, '');
        await c.startMap();
      }
      await a.waitFor('beta again', (nm) => nm.peerByName('beta')?.Online === true);
      const after = ts.server.state.nodeByKey(a.nodePublicKey)!.node;
      assert.equal(after.id, before.id);
      assert.equal(after.ipv4, before.ipv4);
      assert.equal(a.netmap.self?.Key, a.nodePublicKey);
    } finally {
      await a.close();
      await b.close();
      await ts.cleanup();
    }
  });
});

export type { tailcfg };
