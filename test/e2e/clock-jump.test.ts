// The wall clock jumping forward and back (issue 17, item 3): a real server whose wall clock the
// test moves (StartOptions.now), with our real protocol client. Key-expiry timers count monotonic
// time, so without re-arming a forward jump would leave an expired key announced only when its
// timer fires, hours later; a backward jump must not expire a key early; nothing crashes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../../src/client/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';

const HOUR = 3_600_000;

describe('wall clock jumps', () => {
  let offsetMs = 0;
  const now = (): number => Date.now() + offsetMs;
  let ts: TestServer;
  const clients: NodeClient[] = [];
  let key: string;

  async function connect(hostname: string): Promise<NodeClient> {
    const client = new NodeClient({ serverUrl: ts.server.url, hostname });
    clients.push(client);
    await client.loginWithAuthKey(key);
    await client.startMap();
    await client.waitFor('the first netmap', (nm) => nm.self !== null);
    return client;
  }

  async function setExpiry(hostname: string, at: number): Promise<void> {
    const node = [...ts.defaultTailnet.nodes()].find((n) => n.hostname === hostname);
    assert.ok(node, `node ${hostname}`);
    await ts.defaultTailnet.updateNode(node.id, { keyExpiry: new Date(at) }, { name: 'test' });
  }

  before(async () => {
    ts = await startTestServer({ start: { now, clockCheckMs: 50 } });
    const alice = await ts.createUser('alice');
    key = await ts.authKey(alice, { reusable: true });
  });
  after(async () => {
    for (const c of clients) c.close();
    await ts.cleanup();
  });

  it('expires nothing early after a backward jump and announces expiry at once after a forward jump', async () => {
    const laptop = await connect('laptop');
    await connect('desktop');
    await connect('phone');
    await laptop.waitFor('both peers', (nm) => nm.peerByName('desktop') !== undefined && nm.peerByName('phone') !== undefined);
    await setExpiry('desktop', now() + HOUR);
    await setExpiry('phone', now() + 1_500);
    await laptop.waitFor('the new expiries', (nm) => nm.peerByName('phone')?.KeyExpiry !== undefined && nm.peerByName('desktop')?.KeyExpiry !== undefined);

    // Back one hour: the phone's timer (armed for 1.5 s) must now wait for the wall clock.
    offsetMs = -HOUR;
    await new Promise((r) => setTimeout(r, 3_000));
    assert.notEqual(laptop.netmap.peerByName('phone')?.Expired, true, 'no key expires before its date after a backward jump');
    assert.notEqual(laptop.netmap.peerByName('desktop')?.Expired, true);

    // Forward two hours past the start: both keys are past their dates and peers hear it now,
    // not when the monotonic timers would have fired (an hour from now).
    offsetMs = 2 * HOUR;
    await laptop.waitFor('both peers expired', (nm) => nm.peerByName('desktop')?.Expired === true && nm.peerByName('phone')?.Expired === true, 5_000);

    // Nothing crashed: the server still registers and maps a new node.
    const tablet = await connect('tablet');
    assert.ok(tablet.netmap.self !== null);
  });
});
