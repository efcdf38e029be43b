import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Curve25519PrivateKey } from '../key/index.js';
import type { MachinePublicKey, NodePublicKey } from '../key/index.js';
import { forEachDialect } from '../store/testing.js';
import { ServerState } from './server-state.js';
import type { StateEvent } from './events.js';
import { sanitizeHostname, uniqueGivenName } from './given-name.js';
import type { Actor } from './actor.js';
import type { TailnetState } from './tailnet-state.js';

const admin: Actor = { name: 'test-admin' };

function keys(): { machineKey: MachinePublicKey; nodeKey: NodePublicKey } {
  return {
    machineKey: Curve25519PrivateKey.generate().publicKey('machine'),
    nodeKey: Curve25519PrivateKey.generate().publicKey('node'),
  };
}

function record(tailnet: TailnetState): StateEvent[] {
  const events: StateEvent[] = [];
  tailnet.subscribe((e) => events.push(e));
  return events;
}

describe('given names', () => {
  it('sanitises hostnames into one DNS label', () => {
    assert.equal(sanitizeHostname('My Laptop.local'), 'my-laptop');
    assert.equal(sanitizeHostname('--x--'), 'x');
    assert.equal(sanitizeHostname(''), 'node');
    assert.equal(sanitizeHostname('a'.repeat(80)).length, 63);
  });
  it('suffixes a clash with -1, -2', () => {
    const taken = new Set(['laptop', 'laptop-1']);
    assert.equal(uniqueGivenName('laptop', (n) => taken.has(n)), 'laptop-2');
    assert.equal(uniqueGivenName('desk', (n) => taken.has(n)), 'desk');
  });
});

forEachDialect('ServerState', (open) => {
  it('creates the default tailnet and keeps everything across a reload', async (t) => {
    const { store, reopen, cleanup } = await open();
    t.after(cleanup);
    let state = await ServerState.load(store, { flushIntervalMs: 0 });
    const tailnet = state.defaultTailnet;
    const alice = await tailnet.createUser({ name: 'alice', email: 'alice@example.com' }, admin);
    const node = await tailnet.addNode({ ...keys(), hostinfo: { Hostname: 'laptop' }, userId: alice.id, keyExpiry: null, ephemeral: false, registerMethod: 'cli' }, admin);
    await tailnet.applyLiveUpdate(node.id, { endpoints: ['192.0.2.1:41641'] });
    await state.close();

    const reopened = await reopen();
    state = await ServerState.load(reopened, { flushIntervalMs: 0 });
    const again = state.defaultTailnet.node(node.id);
    assert.ok(again);
    assert.equal(again.givenName, 'laptop');
    assert.equal(again.ipv4, node.ipv4);
    assert.deepEqual(again.endpoints, ['192.0.2.1:41641'], 'live fields are flushed on close');
    assert.equal(state.nodeByKey(node.nodeKey)?.node.id, node.id);
    await state.close();
  });

  it('gives a second laptop the name laptop-1 and publishes nodeAdded after commit', async (t) => {
    const { store, cleanup } = await open();
    t.after(cleanup);
    const state = await ServerState.load(store, { flushIntervalMs: 0 });
    t.after(() => state.close());
    const tailnet = state.defaultTailnet;
    const events = record(tailnet);
    const bob = await tailnet.createUser({ name: 'bob' }, admin);
    const a = await tailnet.addNode({ ...keys(), hostinfo: { Hostname: 'laptop' }, userId: bob.id, keyExpiry: null, ephemeral: false, registerMethod: 'cli' }, admin);
    const b = await tailnet.addNode({ ...keys(), hostinfo: { Hostname: 'Laptop' }, userId: bob.id, keyExpiry: null, ephemeral: false, registerMethod: 'cli' }, admin);
    assert.equal(a.givenName, 'laptop');
    assert.equal(b.givenName, 'laptop-1');
    assert.notEqual(a.ipv4, b.ipv4);
    assert.deepEqual(events.map((e) => e.kind), ['userAdded', 'nodeAdded', 'nodeAdded']);
    const stored = await store.read.nodes.get(b.id);
    assert.equal(stored?.givenName, 'laptop-1');
    const audit = await state.listAudit({ tailnetId: tailnet.id });
    assert.ok(audit.some((e) => e.action === 'node.register' && e.target === `node:${b.id}` && e.actor === 'test-admin'));
  });

  it('reports exactly the facets that changed', async (t) => {
    const { store, cleanup } = await open();
    t.after(cleanup);
    const state = await ServerState.load(store, { flushIntervalMs: 0 });
    t.after(() => state.close());
    const tailnet = state.defaultTailnet;
    const carol = await tailnet.createUser({ name: 'carol' }, admin);
    const node = await tailnet.addNode({ ...keys(), hostinfo: { Hostname: 'srv' }, userId: carol.id, keyExpiry: null, ephemeral: false, registerMethod: 'cli' }, admin);
    const events = record(tailnet);
    await tailnet.applyLiveUpdate(node.id, { endpoints: ['198.51.100.7:1'] });
    await tailnet.applyLiveUpdate(node.id, { endpoints: ['198.51.100.7:1'] });
    await tailnet.applyLiveUpdate(node.id, { hostinfo: { Hostname: 'srv', NetInfo: { PreferredDERP: 999 } } });
    await tailnet.applyLiveUpdate(node.id, { hostinfo: { Hostname: 'srv', RoutableIPs: ['10.0.0.0/24'] } });
    await tailnet.updateNode(node.id, { tags: ['tag:web'] }, admin);
    const facets = events.map((e) => (e.kind === 'nodeChanged' ? [...e.facets].sort().join(',') : e.kind));
    assert.deepEqual(facets, ['endpoints', 'derp', 'advertisedRoutes,hostinfo', 'tags']);
    const after = tailnet.node(node.id)!;
    assert.equal(after.hostinfo.NetInfo?.PreferredDERP, 999, 'a Hostinfo without NetInfo keeps the previous NetInfo');
    assert.deepEqual(after.advertisedRoutes, ['10.0.0.0/24']);
    assert.deepEqual(after.endpoints, ['198.51.100.7:1'], 'a durable update keeps newer live fields');
    const stored = await store.read.nodes.get(node.id);
    assert.deepEqual(stored?.advertisedRoutes, ['10.0.0.0/24'], 'advertised routes are committed at once');
  });

  it('consumes a single-use pre-auth key once, even with concurrent registrations', async (t) => {
    const { store, cleanup } = await open();
    t.after(cleanup);
    const state = await ServerState.load(store, { flushIntervalMs: 0 });
    t.after(() => state.close());
    const tailnet = state.defaultTailnet;
    const dave = await tailnet.createUser({ name: 'dave' }, admin);
    const { key } = await state.createPreAuthKey(tailnet, { userId: dave.id, reusable: false, ephemeral: false, tags: [], expiresAt: null }, admin);
    const attempts = await Promise.allSettled(
      Array.from({ length: 5 }, () =>
        tailnet.addNode({ ...keys(), hostinfo: { Hostname: 'box' }, userId: dave.id, keyExpiry: null, ephemeral: false, registerMethod: 'authkey', consumePreAuthKey: key.id }, admin),
      ),
    );
    assert.equal(attempts.filter((a) => a.status === 'fulfilled').length, 1);
    const failures = attempts.filter((a): a is PromiseRejectedResult => a.status === 'rejected');
    assert.ok(failures.every((f) => (f.reason as { code?: string }).code === 'HW_STATE_AUTHKEY_INVALID'));
    assert.equal(tailnet.nodeCount, 1, 'failed registrations leave no node behind');
    assert.equal((await store.read.preAuthKeys.get(key.id))?.usedCount, 1);
  });

  it('refuses to delete a user who owns nodes, and deletes nodes with their audit entry', async (t) => {
    const { store, cleanup } = await open();
    t.after(cleanup);
    const state = await ServerState.load(store, { flushIntervalMs: 0 });
    t.after(() => state.close());
    const tailnet = state.defaultTailnet;
    const erin = await tailnet.createUser({ name: 'erin' }, admin);
    const node = await tailnet.addNode({ ...keys(), hostinfo: { Hostname: 'pc' }, userId: erin.id, keyExpiry: null, ephemeral: false, registerMethod: 'cli' }, admin);
    await assert.rejects(tailnet.deleteUser(erin.id, admin), { code: 'HW_STATE_USER_HAS_NODES' });
    const events = record(tailnet);
    await tailnet.deleteNode(node.id, admin);
    assert.equal(state.nodeByKey(node.nodeKey), undefined);
    assert.equal(await store.read.nodes.get(node.id), undefined);
    assert.deepEqual(events.map((e) => e.kind), ['nodeRemoved']);
    await tailnet.deleteUser(erin.id, admin);
    const audit = await state.listAudit({ tailnetId: tailnet.id });
    assert.ok(audit.some((e) => e.action === 'node.delete'));
    assert.ok(audit.some((e) => e.action === 'user.delete'));
  });

  it('keeps several tailnets apart', async (t) => {
    const { store, cleanup } = await open();
    t.after(cleanup);
    const state = await ServerState.load(store, { flushIntervalMs: 0 });
    t.after(() => state.close());
    const other = await state.createTailnet('lab', admin);
    await other.createUser({ name: 'alice' }, admin);
    await state.defaultTailnet.createUser({ name: 'alice' }, admin);
    await assert.rejects(state.createTailnet('lab', admin), { code: 'HW_STATE_TAILNET_EXISTS' });
    await assert.rejects(state.deleteTailnet('default', admin), { code: 'HW_STATE_TAILNET_DEFAULT' });
    await state.deleteTailnet('lab', admin);
    assert.equal(state.tailnetByName('lab'), undefined);
  });
});
