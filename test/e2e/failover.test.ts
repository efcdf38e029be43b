// Fast failover of HA subnet routers (issue 17, item 4), against a real `headway serve` process
// with its production presence settings: a router process killed with SIGKILL is replaced as
// primary in its peers' netmaps within 3 s; a router whose connection flaps within
// node.router_failover_grace keeps its role; a primary never moves back when the old router
// returns (hysteresis); a primary that died alone fails over on the router grace, not the
// ordinary offline grace, once a standby comes online.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NodeClient } from '../../src/client/index.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { startDeviceProcess, type DeviceProcess } from '../support/device-process.js';

const PREFIX = '10.77.0.0/24';

function isPrimary(viewer: NodeClient, name: string, prefix = PREFIX): boolean {
  return viewer.netmap.peerByName(name)?.PrimaryRoutes?.includes(prefix) === true;
}

/** What the viewer holds, for a failure message: each peer's presence and primary routes. */
function viewerSees(viewer: NodeClient): string {
  return [...viewer.netmap.peers.values()].map((p) => `${p.Name}: online ${String(p.Online)}, primary [${(p.PrimaryRoutes ?? []).join(' ')}]`).join('; ');
}

async function waitForViewer(viewer: NodeClient, what: string, predicate: () => boolean, timeoutMs: number): Promise<void> {
  try {
    await viewer.waitFor(what, predicate, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}; the viewer sees ${viewerSees(viewer)}`, { cause: err });
  }
}

describe('HA subnet router failover', () => {
  let server: ServerProcess;
  let routerKey: string;
  let userKey: string;
  before(async () => {
    server = await startServerProcess();
    const policy = join(dirname(server.configPath), 'policy.hujson');
    await writeFile(policy, JSON.stringify({
      tagOwners: { 'tag:router': ['alice@'] },
      autoApprovers: { routes: { '10.77.0.0/16': ['tag:router'] } },
      acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }],
    }));
    await server.cli(['users', 'create', 'alice']);
    await server.cli(['policy', 'set', policy]);
    const key = (args: string[]) => server.cli(['preauthkeys', 'create', '--reusable', '--output', 'json', ...args]).then((out) => (JSON.parse(out) as { key: string }).key);
    routerKey = await key(['--tags', 'tag:router']);
    userKey = await key(['--user', 'alice']);
  });
  after(async () => { await server.stop(); });

  it('gives peers the standby router within 3 s of the primary router process dying', async (t) => {
    const r1 = await startDeviceProcess(server.url, routerKey, 'kill-r1', [PREFIX]);
    const r2 = await startDeviceProcess(server.url, routerKey, 'kill-r2', [PREFIX]);
    const viewer = new NodeClient({ serverUrl: server.url, hostname: 'viewer-1' });
    try {
      await viewer.loginWithAuthKey(userKey);
      await viewer.startMap();
      await waitForViewer(viewer, 'kill-r1 primary', () => isPrimary(viewer, 'kill-r1') && viewer.netmap.peerByName('kill-r2') !== undefined, 10_000);
      const killed = performance.now();
      await r1.kill();
      await waitForViewer(viewer, 'kill-r2 primary', () => isPrimary(viewer, 'kill-r2'), 10_000);
      const failoverMs = performance.now() - killed;
      t.diagnostic(`failover: ${Math.round(failoverMs)} ms from SIGKILL to the viewer's netmap`);
      assert.ok(failoverMs < 3_000, `failover took ${Math.round(failoverMs)} ms`);
      assert.ok(!viewer.netmap.peerByName('kill-r1')?.AllowedIPs?.includes(PREFIX), 'the dead router no longer carries the route');
    } finally {
      await viewer.close();
      await r1.kill();
      await r2.kill();
    }
  });

  it('keeps the primary through short flaps, and never moves it back when the old router returns', async () => {
    const r1 = new NodeClient({ serverUrl: server.url, hostname: 'flap-r1', hostinfo: { RoutableIPs: [PREFIX] } });
    const r2 = new NodeClient({ serverUrl: server.url, hostname: 'flap-r2', hostinfo: { RoutableIPs: [PREFIX] } });
    const viewer = new NodeClient({ serverUrl: server.url, hostname: 'viewer-2' });
    const clients = [r1, r2, viewer];
    try {
      for (const c of clients) {
        await c.loginWithAuthKey(c === viewer ? userKey : routerKey);
        await c.startMap();
      }
      await waitForViewer(viewer, 'flap-r1 primary', () => isPrimary(viewer, 'flap-r1') && viewer.netmap.peerByName('flap-r2') !== undefined, 10_000);
      // Five drops of 300 ms each: shorter than router_failover_grace (1 s).
      let sawR2Primary = false;
      const watch = setInterval(() => { if (isPrimary(viewer, 'flap-r2')) sawR2Primary = true; }, 20);
      try {
        for (let i = 0; i < 5; i++) {
          await r1.stopMap();
          await new Promise((resolve) => setTimeout(resolve, 300));
          await r1.startMap();
          await new Promise((resolve) => setTimeout(resolve, 300));
        }
        await new Promise((resolve) => setTimeout(resolve, 1_500));
      } finally {
        clearInterval(watch);
      }
      assert.equal(sawR2Primary, false, 'the primary never moved during the flaps');
      assert.ok(isPrimary(viewer, 'flap-r1'));

      // A real outage: r2 takes over; r1 returning does not take the prefix back.
      await r1.stopMap();
      await waitForViewer(viewer, 'flap-r2 primary', () => isPrimary(viewer, 'flap-r2'), 5_000);
      await r1.startMap();
      await waitForViewer(viewer, 'flap-r1 online again', () => viewer.netmap.peerByName('flap-r1')?.Online === true, 5_000);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      assert.ok(isPrimary(viewer, 'flap-r2'), 'flap-r2 stays primary');
      assert.ok(!isPrimary(viewer, 'flap-r1'));
    } finally {
      for (const c of clients) await c.close();
    }
  });
  it('fails a dead primary over on the router grace, not the offline grace, once a standby comes online later', async (t) => {
    // Its own prefix: the routers of the other cases must not be standbys here.
    const prefix = '10.77.9.0/24';
    const r1 = await startDeviceProcess(server.url, routerKey, 'late-r1', [prefix]);
    const viewer = new NodeClient({ serverUrl: server.url, hostname: 'viewer-3' });
    let r2: DeviceProcess | null = null;
    try {
      await viewer.loginWithAuthKey(userKey);
      await viewer.startMap();
      await waitForViewer(viewer, 'late-r1 primary', () => isPrimary(viewer, 'late-r1', prefix), 10_000);
      const killed = performance.now();
      // No standby is online when it dies, so it gets node.offline_grace (10 s by default).
      await r1.kill();
      r2 = await startDeviceProcess(server.url, routerKey, 'late-r2', [prefix]);
      const standbyUp = performance.now() - killed;
      await waitForViewer(viewer, 'late-r2 primary', () => isPrimary(viewer, 'late-r2', prefix), 15_000);
      const failoverMs = performance.now() - killed;
      t.diagnostic(`failover: ${Math.round(failoverMs)} ms from SIGKILL (the standby was up after ${Math.round(standbyUp)} ms)`);
      assert.ok(failoverMs < Math.max(standbyUp, 1_000) + 3_000, `failover took ${Math.round(failoverMs)} ms: the dead router kept the offline grace`);
    } finally {
      await viewer.close();
      await r1.kill();
      await r2?.kill();
    }
  });
});
