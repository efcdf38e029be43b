// High availability in one process: three instances on one PostgreSQL database, our real
// protocol clients connected to different instances. Shows the change log carrying writes from
// any instance to every other instance's sessions, presence across instances, the shared keys
// and the singleton jobs. (test/e2e/ha-haproxy.test.ts runs separate processes behind HAProxy.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../../src/client/index.js';
import { DerpClient } from '../../src/client/derp/index.js';
import { startTestCluster, waitUntil, type TestCluster } from '../../src/ha/testing.js';
import type { RunningServer } from '../../src/server/index.js';

const admin = { name: 'test' };

async function connect(server: RunningServer, hostname: string, key: string, options: { ephemeral?: boolean } = {}): Promise<NodeClient> {
  const client = new NodeClient({ serverUrl: server.url, hostname, capVersion: 109 });
  await client.loginWithAuthKey(key, options);
  await client.startMap();
  await client.waitFor(`${hostname}'s first netmap`, (nm) => nm.self !== null);
  // From capability version 68 on, endpoints come in lite updates, not in the stream request.
  assert.equal(await client.liteUpdate({ endpoints: [`198.51.100.${Math.floor(Math.random() * 200) + 1}:41641`] }), 200);
  return client;
}

describe('high availability (three instances, one PostgreSQL)', () => {
  let cluster: TestCluster;
  let key: string;
  const clients: NodeClient[] = [];

  before(async () => {
    cluster = await startTestCluster(3, { config: { ephemeral_node_inactivity_timeout: '1s' } });
    const [one] = cluster.instances;
    const alice = await one!.state.defaultTailnet.createUser({ name: 'alice' }, admin);
    const created = await one!.state.createPreAuthKey(one!.state.defaultTailnet, { userId: alice.id, reusable: true, ephemeral: false, tags: [], expiresAt: null }, admin);
    key = created.secret;
  });
  after(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await cluster.cleanup();
  });

  it('serves the same Noise and DERP keys from every instance', async () => {
    const keys = await Promise.all(cluster.instances.map(async (server) => (await fetch(`${server.url}/key?v=109`)).json() as Promise<{ publicKey: string }>));
    assert.equal(new Set(keys.map((k) => k.publicKey)).size, 1);
    const derpKeys = cluster.instances.map((server) => server.derp?.publicKey);
    assert.equal(new Set(derpKeys).size, 1);
    assert.ok(derpKeys[0] !== undefined);
  });

  it('shows clients registered on different instances to each other, with endpoints', async () => {
    const [one, two, three] = cluster.instances as [RunningServer, RunningServer, RunningServer];
    clients.push(await connect(one, 'laptop', key), await connect(two, 'desktop', key), await connect(three, 'phone', key));
    const [laptop, desktop, phone] = clients as [NodeClient, NodeClient, NodeClient];
    for (const [client, peers] of [[laptop, ['desktop', 'phone']], [desktop, ['laptop', 'phone']], [phone, ['laptop', 'desktop']]] as const) {
      for (const peer of peers) {
        await client.waitFor(`${client.hostinfo.Hostname} sees ${peer} online with endpoints`, (nm) => {
          const node = nm.peerByName(peer);
          return node !== undefined && node.Online === true && (node.Endpoints?.length ?? 0) > 0;
        });
      }
    }
    // Every instance holds every node in memory.
    for (const server of cluster.instances) assert.equal(server.state.defaultTailnet.nodeCount, 3);
  });

  it('carries a policy change made through instance 1 to clients of instances 2 and 3', async () => {
    const [one] = cluster.instances as [RunningServer];
    const [, desktop, phone] = clients as [NodeClient, NodeClient, NodeClient];
    const policy = JSON.stringify({ acls: [{ action: 'accept', src: ['alice@'], dst: ['*:22'] }] });
    await one.state.defaultTailnet.setPolicy(policy, admin, { persist: true });
    for (const client of [desktop, phone]) {
      await client.waitFor('the new filter', (nm) => JSON.stringify(nm.packetFilter).includes('"First":22'));
    }
    for (const server of cluster.instances) assert.equal(server.state.defaultTailnet.policyText, policy);
  });

  it('carries an admin change on instance 3 (rename) to every instance and client', async () => {
    const [, , three] = cluster.instances as [RunningServer, RunningServer, RunningServer];
    const [laptop] = clients as [NodeClient];
    const desktopNode = three.state.nodeByKey(clients[1]!.nodePublicKey)!.node;
    await three.state.defaultTailnet.renameNode(desktopNode.id, 'workstation', admin);
    await laptop.waitFor('the renamed peer', (nm) => nm.peerByName('workstation') !== undefined);
    for (const server of cluster.instances) {
      await waitUntil('the rename everywhere', () => server.state.defaultTailnet.node(desktopNode.id)?.givenName === 'workstation');
    }
  });

  it('relays packets between clients connected to different instances through the DERP mesh', async () => {
    const [one, two] = cluster.instances as [RunningServer, RunningServer];
    const [laptop, desktop] = clients as [NodeClient, NodeClient];
    const a = await DerpClient.connect({ url: `${one.url}/derp`, privateKey: laptop.nodeKey });
    const b = await DerpClient.connect({ url: `${two.url}/derp`, privateKey: desktop.nodeKey });
    try {
      const got: string[] = [];
      b.onPacket((src, packet) => { if (src === laptop.nodePublicKey) got.push(packet.toString('utf8')); });
      const back: string[] = [];
      a.onPacket((src, packet) => { if (src === desktop.nodePublicKey) back.push(packet.toString('utf8')); });
      // The mesh learns of b's connection within a heartbeat; until then the packet is dropped.
      await waitUntil('a packet across the mesh', () => {
        a.sendPacket(desktop.nodePublicKey, Buffer.from('hello over the mesh'));
        return got.length > 0;
      }, 10_000);
      assert.equal(got[0], 'hello over the mesh');
      await waitUntil('the reply', () => {
        b.sendPacket(laptop.nodePublicKey, Buffer.from('and back'));
        return back.length > 0;
      }, 10_000);
      assert.equal(back[0], 'and back');
    } finally {
      a.close();
      b.close();
    }
  });

  it('takes a stopped instance\'s clients offline for peers on other instances', async () => {
    const [laptop, , phone] = clients as [NodeClient, NodeClient, NodeClient];
    await cluster.stop(2);
    await laptop.waitFor('phone offline', (nm) => nm.peerByName('phone')?.Online === false, 8_000);
    // Back through another instance: online again, same addresses.
    const before = laptop.netmap.peerByName('phone')!.Addresses;
    const again = new NodeClient({ serverUrl: cluster.instances[1]!.url, hostname: 'phone', capVersion: 109, machineKey: phone.machineKey, nodeKey: phone.nodeKey });
    clients.push(again);
    await again.startMap();
    await laptop.waitFor('phone online again', (nm) => nm.peerByName('phone')?.Online === true, 8_000);
    assert.deepEqual(laptop.netmap.peerByName('phone')!.Addresses, before);
  });

  it('deletes an inactive ephemeral node exactly once across the instances', async () => {
    const [one, two] = cluster.instances as [RunningServer, RunningServer];
    const alice = one.state.defaultTailnet.userByName('alice')!;
    const ephemeralKey = (await two.state.createPreAuthKey(two.state.defaultTailnet, { userId: alice.id, reusable: false, ephemeral: true, tags: [], expiresAt: null }, admin)).secret;
    const temp = await connect(two, 'temp', ephemeralKey, { ephemeral: true });
    const id = two.state.nodeByKey(temp.nodePublicKey)!.node.id;
    await waitUntil('temp on instance 1', () => one.state.defaultTailnet.node(id) !== undefined);
    await temp.close();
    for (const server of [one, two]) await waitUntil('temp deleted everywhere', () => server.state.defaultTailnet.node(id) === undefined, 10_000);
    // Give a second instance's timer the chance to run too, then count.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const audit = await one.state.listAudit({ limit: 1000 });
    assert.equal(audit.filter((entry) => entry.action === 'node.ephemeral.expire' && entry.target === `node:${id}`).length, 1);
  });
});
