// The --target network benchmark against our own server, in a short run: real registrations
// with a reusable pre-auth key, real map polls, real lite updates. It checks what the benchmark
// reports, not how fast (performance is shown by `npm run bench`).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../server/testing.js';
import { runTargetNetwork } from './network-target.js';

const admin = { name: 'test' };

describe('network benchmark against a running server (--target)', () => {
  let ts: TestServer;
  let key: string;

  before(async () => {
    ts = await startTestServer();
    const user = await ts.createUser('bench');
    key = await ts.authKey(user, { reusable: true });
  });
  after(async () => {
    await ts.cleanup();
  });

  it('joins N nodes with one key, times every change to every peer, and reads the server process', async () => {
    const result = await runTargetNetwork({
      target: ts.server.url, authKey: key, nodes: 6, serverPid: process.pid,
      churnPerSecond: 20, durationS: 0.5, idleS: 0.2, concurrency: 3, joinTimeoutS: 30, settleS: 10,
    });
    assert.deepEqual(result.failures, { count: 0, first: [] });
    assert.equal(result.join.converged, true);
    assert.deepEqual([result.join.registered, result.join.streaming, result.join.complete, result.join.expected_peers, result.join.peers_min], [6, 6, 6, 5, 5]);
    assert.ok(result.join.server_cpu_s !== null && result.join.server_cpu_s >= 0);
    assert.equal([...ts.defaultTailnet.nodes()].length, 6, 'the server holds the six registered nodes');
    const churn = result.churn!;
    assert.equal(churn.changes, 10);
    assert.equal(churn.undelivered, 0, JSON.stringify(churn));
    assert.ok(churn.p50_ms > 0 && churn.p99_ms >= churn.p50_ms, `p50 ${churn.p50_ms} p99 ${churn.p99_ms}`);
    // Headway sends endpoint changes as patches, never the whole peer list again.
    assert.ok(churn.messages.patches > 0);
    assert.equal(churn.messages.full_peer_lists, 0, JSON.stringify(churn));
    assert.ok(result.idle !== null && result.idle.server_rss_mb !== null && result.idle.server_rss_mb > 0);
  });

  it('reports a server that never converges with what it reached, within the join timeout', async () => {
    // Nobody may reach anybody: nodes see no peers, so the join can never complete.
    await ts.defaultTailnet.setPolicy(JSON.stringify({ acls: [] }), admin, { persist: true });
    const started = performance.now();
    const result = await runTargetNetwork({ target: ts.server.url, authKey: key, nodes: 3, joinTimeoutS: 1.5, idleS: 0.1, durationS: 0.1 });
    const seconds = (performance.now() - started) / 1000;
    assert.equal(result.join.converged, false);
    assert.deepEqual([result.join.registered, result.join.streaming, result.join.complete, result.join.peers_median], [3, 3, 0, 0]);
    assert.equal(result.join.server_cpu_s, null, 'no --server-pid, no CPU reading');
    assert.equal(result.churn, null);
    assert.equal(result.idle, null);
    assert.ok(seconds < 15, `gave up after ${seconds.toFixed(1)} s`);
  });

  it('says why a refused key cannot join', async () => {
    const result = await runTargetNetwork({ target: ts.server.url, authKey: 'hskey-auth-not-a-real-key', nodes: 2, joinTimeoutS: 5 });
    assert.equal(result.join.converged, false);
    assert.equal(result.join.registered, 0);
    assert.equal(result.failures.count, 2);
    assert.match(result.failures.first[0]!, /^device \d: register: /);
  });
});
