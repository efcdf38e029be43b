// Device approval (tailnet setting device_approval): a new device of a non-admin user is
// registered but waits, invisible to its peers and without peers of its own, until an admin
// approves it; approval reaches the connected peers as an added peer (a delta, not a new map).
// Admins' devices and devices registered with a pre-approved key do not wait.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../../src/client/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';

const admin = { name: 'test' };

async function device(ts: TestServer, hostname: string, key: string, authorized = true): Promise<NodeClient> {
  const client = new NodeClient({ serverUrl: ts.server.url, hostname, capVersion: 130 });
  const registered = await client.loginWithAuthKey(key);
  assert.equal(registered.MachineAuthorized, authorized, `${hostname}: the register answer says whether it waits for approval`);
  await client.startMap();
  await client.waitFor('a netmap', (nm) => nm.self !== null);
  return client;
}

describe('device approval', () => {
  it('holds a member\'s new device until an admin approves it; admins and pre-approved keys skip the wait', async () => {
    const ts = await startTestServer();
    const boss = await ts.defaultTailnet.createUser({ name: 'boss', email: 'boss@example.com', role: 'admin' }, admin);
    const ann = await ts.createUser('ann');
    await ts.defaultTailnet.setDeviceApproval(true, admin);
    const b = await device(ts, 'boss-pc', await ts.authKey(boss));
    const a = await device(ts, 'ann-pc', await ts.authKey(ann), false);
    const clients = [a, b];
    try {
      const annNode = ts.server.state.nodeByKey(a.nodePublicKey)!.node;
      assert.equal(annNode.approved, false, "ann's device waits");
      assert.equal(ts.server.state.nodeByKey(b.nodePublicKey)!.node.approved, true, "an admin's device does not");
      assert.equal(a.netmap.self?.MachineAuthorized, false, 'the waiting client is told it is not authorised yet');
      assert.equal(a.netmap.peers.size, 0, 'the waiting device sees no peer');
      assert.equal(a.netmap.packetFilter.length, 0, 'and gets an empty filter');
      // Give the server time to (wrongly) announce it, then check boss still does not see it.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(b.netmap.peerByName('ann-pc'), undefined, 'peers do not see the waiting device');

      const before = b.received.length;
      await ts.defaultTailnet.approveNode(annNode.id, admin);
      await b.waitFor('ann-pc as a peer after approval', (nm) => nm.peerByName('ann-pc') !== undefined);
      await a.waitFor('boss-pc as a peer and authorised', (nm) => nm.peerByName('boss-pc') !== undefined && nm.self?.MachineAuthorized === true);
      const arrived = b.received.slice(before);
      assert.ok(arrived.some((m) => (m.PeersChanged ?? []).some((p) => p.Name.startsWith('ann-pc'))), 'ann-pc arrived in PeersChanged');
      assert.ok(arrived.every((m) => m.Peers === undefined || m.Peers === null), 'as a delta, not a full peer list');
      const audit = await ts.server.state.store.read.audit.list({ tailnetId: ts.defaultTailnet.id });
      assert.ok(audit.some((e) => e.action === 'node.approve' && e.target === `node:${annNode.id}`), 'approval is audited');

      const c = await device(ts, 'ann-phone', await ts.authKey(ann, { preApproved: true }));
      clients.push(c);
      assert.equal(ts.server.state.nodeByKey(c.nodePublicKey)!.node.approved, true, 'a pre-approved key skips the wait');
      await b.waitFor('ann-phone visible at once', (nm) => nm.peerByName('ann-phone') !== undefined);

      // The approval state survives a restart.
      await ts.defaultTailnet.setDeviceApproval(true, admin);
      const d = await device(ts, 'ann-tablet', await ts.authKey(ann), false);
      clients.push(d);
      const waiting = ts.server.state.nodeByKey(d.nodePublicKey)!.node;
      for (const client of clients) await client.close();
      clients.length = 0;
      await ts.restart();
      assert.equal(ts.defaultTailnet.deviceApproval, true);
      assert.equal(ts.defaultTailnet.node(waiting.id)?.approved, false);
      assert.equal([...ts.server.pipeline(ts.defaultTailnet.id).policy.peersOf(waiting.id)].length, 0, 'still withheld after the restart');
    } finally {
      for (const client of clients) await client.close();
      await ts.cleanup();
    }
  });
});
