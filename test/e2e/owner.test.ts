// The tailnet owner in a running server: autogroup:owner selects the owner's devices, and a
// transfer of ownership moves that selection (and the is-owner capability) to the connected
// nodes as deltas.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../../src/client/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';

const admin = { name: 'test' };
const IS_OWNER = 'https://tailscale.com/cap/is-owner';

async function device(ts: TestServer, hostname: string, key: string): Promise<NodeClient> {
  const client = new NodeClient({ serverUrl: ts.server.url, hostname, capVersion: 130 });
  await client.loginWithAuthKey(key);
  await client.startMap();
  await client.waitFor('a netmap', (nm) => nm.self !== null);
  return client;
}

describe('the tailnet owner in a running server', () => {
  it('autogroup:owner follows a transfer of ownership to the connected nodes', async () => {
    const ts = await startTestServer();
    const ann = await ts.createUser('ann');
    const ben = await ts.createUser('ben');
    await ts.defaultTailnet.transferOwnership(ann.id, admin);
    await ts.defaultTailnet.setPolicy(JSON.stringify({ acls: [{ action: 'accept', src: ['autogroup:owner'], dst: ['*:22'] }] }), admin, { persist: true });
    const a = await device(ts, 'ann-pc', await ts.authKey(ann));
    const b = await device(ts, 'ben-pc', await ts.authKey(ben));
    try {
      const annIp = ts.server.state.nodeByKey(a.nodePublicKey)!.node.ipv4!;
      const benIp = ts.server.state.nodeByKey(b.nodePublicKey)!.node.ipv4!;
      await b.waitFor("the owner's device as a source", (nm) => nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(annIp)));
      assert.ok(Object.prototype.hasOwnProperty.call(a.netmap.self?.CapMap ?? {}, IS_OWNER), 'the owner carries is-owner');
      assert.ok(!Object.prototype.hasOwnProperty.call(b.netmap.self?.CapMap ?? {}, IS_OWNER));

      await ts.defaultTailnet.transferOwnership(ben.id, admin);
      await a.waitFor("the new owner's device as a source", (nm) => nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(benIp)));
      await b.waitFor('the former owner no longer a source', (nm) => !nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(annIp)));
      await b.waitFor('is-owner on the new owner', (nm) => Object.prototype.hasOwnProperty.call(nm.self?.CapMap ?? {}, IS_OWNER));
      await a.waitFor('is-owner gone from the former owner', (nm) => !Object.prototype.hasOwnProperty.call(nm.self?.CapMap ?? {}, IS_OWNER));
      assert.equal(ts.defaultTailnet.userByName('ann')!.role, 'admin');
    } finally {
      await a.close();
      await b.close();
      await ts.cleanup();
    }
  });
});
