// HA leases when the wall clock jumps (issue 17, item 3): two instances on one PostgreSQL in this
// process, whose wall clock (Date.now, which is what an NTP step or a resumed VM moves) the test
// sets two hours forward and then two hours back. Leases are timed by the database's clock and
// elapsed times by the monotonic clock, so: no live instance's lease looks lapsed (nodes stay
// online for their peers on the other instance throughout), and an instance that died is still
// reaped within its lease plus a heartbeat, so its nodes go offline everywhere.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../../src/client/index.js';
import { startTestCluster, type TestCluster } from '../../src/ha/testing.js';
import type { NodeId } from '../../src/model/index.js';
import type { RunningServer } from '../../src/server/index.js';

const HOUR = 3_600_000;
const admin = { name: 'test' };
/** The dead instance's lease; the cluster's own is 2 s, renewed every 500 ms. */
const GHOST_LEASE_MS = 2_000;

async function waitUntil(what: string, predicate: () => boolean, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (!predicate()) {
    if (performance.now() - started > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return performance.now() - started;
}

describe('HA leases when the wall clock jumps', () => {
  const realDateNow = Date.now;
  let offsetMs = 0;
  let cluster: TestCluster;
  const clients: NodeClient[] = [];
  let phoneId: NodeId;
  /** The phone's MagicDNS label (each test renames it). */
  let phoneName = 'phone';
  /** Set when laptop or desktop ever saw the other offline: a live lease must never lapse. */
  const flaps: string[] = [];
  let watching: NodeJS.Timeout | null = null;

  async function connect(server: RunningServer, hostname: string, key: string): Promise<NodeClient> {
    const client = new NodeClient({ serverUrl: server.url, hostname, capVersion: 109 });
    clients.push(client);
    await client.loginWithAuthKey(key);
    await client.startMap();
    await client.waitFor(`${hostname}'s first netmap`, (nm) => nm.self !== null);
    return client;
  }

  /** An instance that held the phone's session and then died: a lease it never renews. */
  async function ghostHoldsPhone(one: RunningServer, name: string): Promise<void> {
    await one.state.store.transaction(async (tx) => {
      await tx.ha.renewLease(name, 'http://127.0.0.1:9', GHOST_LEASE_MS);
      await tx.ha.setPresence(phoneId, name, 109);
    });
  }

  before(async () => {
    Date.now = () => realDateNow.call(Date) + offsetMs;
    cluster = await startTestCluster(2, { start: { now: () => Date.now(), clockCheckMs: 50 } });
    const [one] = cluster.instances as [RunningServer];
    const alice = await one.state.defaultTailnet.createUser({ name: 'alice' }, admin);
    const key = (await one.state.createPreAuthKey(one.state.defaultTailnet, { userId: alice.id, reusable: true, ephemeral: false, tags: [], expiresAt: null }, admin)).secret;
    const [, two] = cluster.instances as [RunningServer, RunningServer];
    const laptop = await connect(one, 'laptop', key);
    const desktop = await connect(two, 'desktop', key);
    const phone = await connect(one, 'phone', key);
    phoneId = [...one.state.defaultTailnet.nodes()].find((n) => n.hostname === 'phone')!.id;
    await waitUntil('laptop and desktop online for each other', () =>
      laptop.netmap.peerByName('desktop')?.Online === true && desktop.netmap.peerByName('laptop')?.Online === true, 10_000);
    // The phone must have been seen online (its presence row written) before it leaves, or its
    // late row would pass for the dead instance's in the tests.
    await waitUntil('the phone online for laptop and desktop', () =>
      laptop.netmap.peerByName(phoneName)?.Online === true && desktop.netmap.peerByName(phoneName)?.Online === true, 10_000);
    await phone.close();
    await waitUntil('the phone offline for laptop and desktop', () =>
      laptop.netmap.peerByName(phoneName)?.Online === false && desktop.netmap.peerByName(phoneName)?.Online === false, 10_000);
    assert.equal((await one.state.store.read.ha.livePresence([phoneId])).size, 0, 'the phone\'s presence row is gone');
    watching = setInterval(() => {
      if (laptop.netmap.peerByName('desktop')?.Online !== true) flaps.push(`desktop offline for laptop at offset ${offsetMs}`);
      if (desktop.netmap.peerByName('laptop')?.Online !== true) flaps.push(`laptop offline for desktop at offset ${offsetMs}`);
    }, 50);
  });

  after(async () => {
    if (watching !== null) clearInterval(watching);
    Date.now = realDateNow;
    for (const client of clients) await client.close().catch(() => undefined);
    await cluster.cleanup();
  });

  for (const [label, jumpMs] of [['forward two hours', 2 * HOUR], ['back two hours', -2 * HOUR]] as const) {
    it(`keeps live leases and reaps a dead instance on time after a jump ${label}`, async () => {
      const [one, two] = cluster.instances as [RunningServer, RunningServer];
      const [laptop, desktop] = clients as [NodeClient, NodeClient];
      const reapedBefore = one.ha!.jobRuns.reaped + two.ha!.jobRuns.reaped;
      offsetMs = jumpMs;
      const ghost = `hw-ghost-${jumpMs > 0 ? 'ahead' : 'behind'}`;
      const leaseTakenAt = performance.now();
      await ghostHoldsPhone(one, ghost);
      await waitUntil('the dead instance\'s phone online for the laptop', () => laptop.netmap.peerByName(phoneName)?.Online === true, 5_000);
      // Reaping needs the ghost's lease to run out (database clock) and the reaper's next heartbeat.
      await waitUntil('the phone offline again once the dead lease ran out', () => laptop.netmap.peerByName(phoneName)?.Online === false, 10_000);
      // Counted from the lease's start, not from when the phone was seen online (which may lag).
      const tookMs = performance.now() - leaseTakenAt;
      assert.ok(tookMs >= GHOST_LEASE_MS - 500, `reaped ${Math.round(tookMs)} ms after the lease was taken: before it ran out`);
      // The other instance hears of the reaping through the change log, a moment later.
      await waitUntil('the phone offline for the desktop on the other instance too', () => desktop.netmap.peerByName(phoneName)?.Online === false, 2_000);
      assert.equal(one.ha!.jobRuns.reaped + two.ha!.jobRuns.reaped - reapedBefore, 1, 'only the dead instance\'s session was reaped');
      // Two more lease periods under the jumped clock: the live instances keep their leases.
      await new Promise((resolve) => setTimeout(resolve, 2 * 2_000));
      const leases = await one.state.store.read.ha.instances();
      assert.deepEqual(leases.map((l) => [l.instanceId, l.alive]).sort(), [['hw-1', true], ['hw-2', true]]);
      assert.deepEqual(flaps, [], 'a live instance\'s node never went offline');
      // The change log still carries writes both ways.
      phoneName = `phone-${jumpMs > 0 ? 'ahead' : 'behind'}`;
      await two.state.defaultTailnet.updateNode(phoneId, { givenName: phoneName }, admin);
      await waitUntil('the rename through instance 2 at the laptop on instance 1', () => laptop.netmap.peerByName(phoneName) !== undefined, 5_000);
    });
  }
});
