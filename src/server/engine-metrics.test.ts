import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../client/index.js';
import { startTestServer } from './testing.js';

/** `/metrics` lives on its own listener (metrics_listen_addr), never on the main one. */
async function scrape(metricsUrl: string | null): Promise<string> {
  assert.ok(metricsUrl !== null, 'the metrics listener is on');
  const res = await fetch(metricsUrl);
  assert.equal(res.status, 200);
  return res.text();
}

function value(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line !== undefined, `${name} is exported`);
  return Number(line.slice(name.length + 1));
}

describe('engine metrics', () => {
  it('exports sessions, events, marks and policy rebuilds, summed over tailnets', async () => {
    const ts = await startTestServer();
    const user = await ts.createUser('ann');
    const key = await ts.authKey(user, { reusable: true });
    const a = new NodeClient({ serverUrl: ts.server.url, hostname: 'a' });
    const b = new NodeClient({ serverUrl: ts.server.url, hostname: 'b' });
    try {
      const before = await scrape(ts.server.metricsUrl);
      assert.equal(value(before, 'headway_map_sessions'), 0);
      for (const c of [a, b]) {
        await c.loginWithAuthKey(key);
        await c.startMap();
      }
      await a.waitFor('b as a peer', (nm) => nm.peerByName('b') !== undefined);
      const after = await scrape(ts.server.metricsUrl);
      assert.equal(value(after, 'headway_map_sessions'), 2);
      assert.ok(value(after, 'headway_engine_events_total') > value(before, 'headway_engine_events_total'));
      assert.ok(value(after, 'headway_engine_marks_total') > 0, 'the second node was announced to the first');
      // (Creating the first user did rebuild: it names the tailnet, which every node shows.)
      assert.equal(value(after, 'headway_policy_index_rebuilds_total'), value(before, 'headway_policy_index_rebuilds_total'), 'joins update the policy index in place');
    } finally {
      await a.close();
      await b.close();
      await ts.cleanup();
    }
  });
});
