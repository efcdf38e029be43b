// The policy in a running server: a new policy reaches every connected node as deltas, tags a
// device asks for are checked against tagOwners, and in file mode the file is watched and a bad
// edit keeps the last good policy.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { NodeClient } from '../../src/client/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';

const admin = { name: 'test' };

async function device(ts: TestServer, hostname: string, key: string, hostinfo: Record<string, unknown> = {}): Promise<NodeClient> {
  const client = new NodeClient({ serverUrl: ts.server.url, hostname, capVersion: 130, hostinfo });
  await client.loginWithAuthKey(key);
  await client.startMap();
  await client.waitFor('a netmap', (nm) => nm.self !== null);
  return client;
}

describe('policy changes in a running server', () => {
  it('sends each connected node its new filter and peers when the policy changes', async () => {
    const ts = await startTestServer();
    const ann = await ts.createUser('ann');
    const ben = await ts.createUser('ben');
    const a = await device(ts, 'ann-pc', await ts.authKey(ann));
    const b = await device(ts, 'ben-pc', await ts.authKey(ben));
    try {
      await a.waitFor('ben as a peer under the default allow-all', (nm) => nm.peerByName('ben-pc') !== undefined);
      await ts.defaultTailnet.setPolicy(JSON.stringify({ acls: [{ action: 'accept', src: ['ann@example.com'], dst: ['ann@example.com:*'] }] }), admin, { persist: true });
      await a.waitFor('ben gone', (nm) => nm.peerByName('ben-pc') === undefined);
      await b.waitFor('ann gone', (nm) => nm.peerByName('ann-pc') === undefined);
      await b.waitFor('an empty filter', (nm) => nm.packetFilter.length === 0);
      // capver 130 names ann's devices by the capability each of them carries.
      await a.waitFor('a filter from ann only', (nm) => nm.packetFilter.length === 1 && nm.packetFilter[0]!.SrcIPs.length === 1 && nm.packetFilter[0]!.SrcIPs[0]!.startsWith('cap:'));

      await ts.defaultTailnet.setPolicy(JSON.stringify({ acls: [{ action: 'accept', src: ['ben@example.com'], dst: ['ann@example.com:22'] }] }), admin, { persist: true });
      await a.waitFor('ben back, as a source', (nm) => nm.peerByName('ben-pc') !== undefined);
      await a.waitFor('port 22 only', (nm) => nm.packetFilter.some((r) => r.DstPorts?.every((d) => d.Ports.First === 22 && d.Ports.Last === 22)));
      const versions = await ts.server.state.store.read.policies.list(ts.defaultTailnet.id);
      assert.equal(versions.length, 2, 'database mode keeps every version');
    } finally {
      await a.close();
      await b.close();
      await ts.cleanup();
    }
  });

  it('names node sources by capability from capver 109 and by address before, and keeps the cap: filter as members join', async () => {
    const ts = await startTestServer();
    const ann = await ts.createUser('ann');
    await ts.defaultTailnet.setPolicy(JSON.stringify({ acls: [{ action: 'accept', src: ['autogroup:member'], dst: ['autogroup:member:*'] }] }), admin, { persist: true });
    const key = await ts.authKey(ann);
    const join = async (hostname: string, capVersion: number): Promise<NodeClient> => {
      const client = new NodeClient({ serverUrl: ts.server.url, hostname, capVersion });
      await client.loginWithAuthKey(key);
      await client.startMap();
      await client.waitFor('a netmap', (nm) => nm.self !== null);
      return client;
    };
    const addressOf = (client: NodeClient): string => ts.server.state.nodeByKey(client.nodePublicKey)!.node.ipv4!;
    const fresh = await join('fresh-1', 130);
    const old = await join('old-1', 106);
    const clients = [fresh, old];
    try {
      await fresh.waitFor('old-1 as a source', (nm) => nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(addressOf(old))));
      const capRule = fresh.netmap.packetFilter[0]!;
      assert.equal(capRule.SrcIPs.length, 1);
      assert.match(capRule.SrcIPs[0]!, /^cap:/);
      const cap = capRule.SrcIPs[0]!.slice(4);
      assert.ok(cap in (fresh.netmap.peerByName('old-1')!.CapMap ?? {}), 'the peer carries the capability the filter names');
      await old.waitFor('fresh-1 as a source, by address', (nm) => nm.packetFilter.some((r) => r.SrcIPs.includes(addressOf(fresh))));
      assert.ok(old.netmap.packetFilter.every((r) => r.SrcIPs.every((s) => !s.startsWith('cap:'))), 'capver 106 never sees cap: sources');
      assert.equal(old.netmap.peerByName('fresh-1')!.CapMap?.[cap], undefined, 'older clients get no source caps');

      const filtersBefore = fresh.received.filter((m) => m.PacketFilters != null || m.PacketFilter != null).length;
      const late = await join('late-1', 130);
      clients.push(late);
      await old.waitFor('late-1 as a source, by address', (nm) => nm.packetFilter.some((r) => r.SrcIPs.includes(addressOf(late))));
      await fresh.waitFor('late-1 as a source, through its CapMap', (nm) => nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(addressOf(late))));
      const filtersAfter = fresh.received.filter((m) => m.PacketFilters != null || m.PacketFilter != null).length;
      assert.equal(filtersAfter, filtersBefore, 'a member joining resends no filter to capver 109+ clients');
    } finally {
      for (const c of clients) await c.close();
      await ts.cleanup();
    }
  });

  it("selects users by role: autogroup:admin follows a role change to the connected nodes", async () => {
    const ts = await startTestServer();
    const ann = await ts.createUser('ann');
    const ben = await ts.createUser('ben');
    await ts.defaultTailnet.setPolicy(JSON.stringify({ acls: [{ action: 'accept', src: ['autogroup:admin'], dst: ['*:22'] }] }), admin, { persist: true });
    const a = await device(ts, 'ann-pc', await ts.authKey(ann));
    const b = await device(ts, 'ben-srv', await ts.authKey(ben));
    try {
      assert.equal(b.netmap.peers.size, 0, 'no admin yet: nobody reaches anybody');
      await ts.defaultTailnet.updateUser(ann.id, { role: 'admin' }, admin);
      const annIp = ts.server.state.nodeByKey(a.nodePublicKey)!.node.ipv4!;
      await b.waitFor("ann's device as a source", (nm) => nm.peerByName('ann-pc') !== undefined && nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(annIp)));
      await a.waitFor('the is-admin capability on its own node', (nm) => Object.prototype.hasOwnProperty.call(nm.self?.CapMap ?? {}, 'https://tailscale.com/cap/is-admin'));
      await ts.defaultTailnet.updateUser(ann.id, { role: 'member' }, admin);
      await b.waitFor("ann's device gone again", (nm) => nm.peerByName('ann-pc') === undefined);
    } finally {
      await a.close();
      await b.close();
      await ts.cleanup();
    }
  });

  it('lets a device carry the tags it asks for only when its owner owns them', async () => {
    const ts = await startTestServer();
    const cat = await ts.createUser('cat');
    await ts.defaultTailnet.setPolicy(JSON.stringify({
      tagOwners: { 'tag:web': ['cat@example.com'], 'tag:db': ['group:dba'] },
      groups: { 'group:dba': [] },
      acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }],
    }), admin, { persist: true });
    const key = await ts.authKey(cat);
    const allowed = new NodeClient({ serverUrl: ts.server.url, hostname: 'web-1', hostinfo: { RequestTags: ['tag:web'] } });
    const denied = new NodeClient({ serverUrl: ts.server.url, hostname: 'db-1', hostinfo: { RequestTags: ['tag:db'] } });
    try {
      assert.equal((await allowed.register({ authKey: key })).Error, '');
      assert.deepEqual(ts.server.state.nodeByKey(allowed.nodePublicKey)?.node.tags, ['tag:web']);
      const refused = await denied.register({ authKey: key });
      assert.match(refused.Error, /tag:db/);
      assert.equal(ts.server.state.nodeByKey(denied.nodePublicKey), undefined);
    } finally {
      await allowed.close();
      await denied.close();
      await ts.cleanup();
    }
  });
});

describe('policy file mode', () => {
  it('reloads an edited file and keeps the last good policy after a bad edit', async () => {
    const logLines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write(chunk, _enc, done) { logLines.push(chunk.toString()); done(); } }));
    const holder: { ts?: TestServer } = {};
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'headway-policy-file-'));
    const path = join(dir, 'policy.hujson');
    await writeFile(path, '// everyone\n{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}\n');
    try {
      holder.ts = await startTestServer({ config: { policy: { mode: 'file', path } }, logger });
      const ts = holder.ts;
      const key = await ts.authKey(await ts.createUser('dee'));
      const a = await device(ts, 'one', key);
      const b = await device(ts, 'two', key);
      try {
        await a.waitFor('two', (nm) => nm.peerByName('two') !== undefined);
        await writeFile(path, '{"acls": [}');
        await waitForLog(logLines, /policy file edit rejected/);
        assert.ok(a.netmap.peerByName('two') !== undefined, 'the last good policy stays in force');
        await writeFile(path, '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:22"]}]}');
        await a.waitFor('the reloaded filter', (nm) => nm.packetFilter.some((r) => r.DstPorts?.[0]?.Ports.First === 22));
        assert.ok(logLines.some((l) => l.includes('policy reloaded')));
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      await holder.ts?.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start on an invalid policy file and says where the error is', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'headway-policy-bad-'));
    const path = join(dir, 'policy.hujson');
    await writeFile(path, '{\n  "acls": [{"action": "deny", "src": ["*"], "dst": ["*:*"]}]\n}\n');
    try {
      await assert.rejects(startTestServer({ config: { policy: { mode: 'file', path } } }), (err: Error) => {
        assert.match(err.message, /policy file .*policy\.hujson is invalid/);
        assert.match(err.message, /:2:/, 'names the line');
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function waitForLog(lines: readonly string[], pattern: RegExp, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!lines.some((l) => pattern.test(l))) {
    if (Date.now() > deadline) throw new Error(`no log line matched ${pattern}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
