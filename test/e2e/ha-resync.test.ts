// High availability, an instance that fell behind the pruned change log (docs/ha.md): it
// notices the gap, reloads from the database, and its clients get what it missed: a rename, a
// deleted node, a policy edit, and an interactive login approved elsewhere while it was behind,
// whose waiting client is woken.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../../src/client/index.js';
import { startTestCluster, waitUntil, type TestCluster } from '../../src/ha/testing.js';
import type { RunningServer } from '../../src/server/index.js';

const admin = { name: 'test' };

describe('high availability: an instance behind the pruned change log', () => {
  let cluster: TestCluster;
  const clients: NodeClient[] = [];

  before(async () => {
    cluster = await startTestCluster(2);
  });
  after(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await cluster.cleanup();
  });

  it('reloads from the database and gives its clients what it missed, waking a waiting login', async () => {
    const [one, two] = cluster.instances as [RunningServer, RunningServer];
    const tailnet = one.state.defaultTailnet;
    const alice = await tailnet.createUser({ name: 'alice' }, admin);
    const key = (await one.state.createPreAuthKey(tailnet, { userId: alice.id, reusable: true, ephemeral: false, tags: [], expiresAt: null }, admin)).secret;
    const connect = async (server: RunningServer, hostname: string): Promise<NodeClient> => {
      const client = new NodeClient({ serverUrl: server.url, hostname, capVersion: 109 });
      clients.push(client);
      await client.loginWithAuthKey(key);
      await client.startMap();
      return client;
    };
    const laptop = await connect(one, 'laptop');
    const desktop = await connect(two, 'desktop');
    const printer = new NodeClient({ serverUrl: one.url, hostname: 'printer', capVersion: 109 });
    clients.push(printer);
    await printer.loginWithAuthKey(key);
    await desktop.waitFor('laptop and printer at the desktop', (nm) => nm.peerByName('laptop') !== undefined && nm.peerByName('printer') !== undefined);
    const laptopId = [...tailnet.nodes()].find((n) => n.hostname === 'laptop')!.id;
    const printerId = [...tailnet.nodes()].find((n) => n.hostname === 'printer')!.id;

    // A login opened on instance 2, its client waiting there.
    const tablet = new NodeClient({ serverUrl: two.url, hostname: 'tablet', capVersion: 109 });
    clients.push(tablet);
    const opened = await tablet.register();
    const loginId = opened.AuthURL.split('/').pop()!;
    let settled = false;
    const waiting = tablet.register({ followup: opened.AuthURL }).finally(() => { settled = true; });

    const follower = two.ha!.follower!;
    follower.pause();
    await one.state.defaultTailnet.renameNode(laptopId, 'laptop-renamed', admin);
    await one.state.defaultTailnet.deleteNode(printerId, admin);
    await one.state.defaultTailnet.setPolicy(JSON.stringify({
      acls: [{ action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:22'] }],
    }), admin, { persist: true });
    await one.state.approvePending(loginId, tailnet, { userId: alice.id, keyExpiry: null }, admin);
    // Everything instance 2 has not applied is pruned but the newest row (which is kept).
    const pruned = await one.state.store.read.ha.pruneLog(0);
    assert.ok(pruned >= 3, `pruned ${pruned} rows`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(desktop.netmap.peerByName('laptop') !== undefined, 'instance 2 is behind: the old name');
    assert.equal(settled, false, 'instance 2 is behind: the login still waits');

    const resyncsBefore = follower.stats.resyncs;
    await follower.resume();
    assert.equal(follower.stats.resyncs, resyncsBefore + 1, 'the gap was noticed and the state reloaded');
    await desktop.waitFor('the rename, the deletion and the policy at the desktop', (nm) =>
      nm.peerByName('laptop-renamed') !== undefined && nm.peerByName('printer') === undefined
      && nm.packetFilter.every((rule) => (rule.DstPorts ?? []).every((port) => port.Ports.First === 22 && port.Ports.Last === 22)));
    const done = await Promise.race([waiting, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the waiting login was not woken within 10 s')), 10_000).unref())]);
    assert.equal(done.MachineAuthorized, true);
    assert.equal(done.Login.LoginName, 'alice');
    await waitUntil('one tablet node on instance 2', () => [...two.state.defaultTailnet.nodes()].filter((n) => n.hostname === 'tablet').length === 1);
    // And it keeps following the log afterwards.
    await one.state.defaultTailnet.renameNode(laptopId, 'laptop-again', admin);
    await desktop.waitFor('a later rename at the desktop', (nm) => nm.peerByName('laptop-again') !== undefined);
    assert.ok(laptop.netmap.self !== null);
  });
});
