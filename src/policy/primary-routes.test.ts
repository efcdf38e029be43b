import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PrimaryRouteTable } from './index.js';

describe('PrimaryRouteTable', () => {
  const route = '192.168.1.0/24';

  it('makes the router that registered first primary', () => {
    const t = new PrimaryRouteTable([
      { nodeId: 7, order: 2, online: true, routes: [route] },
      { nodeId: 3, order: 5, online: true, routes: [route] },
    ]);
    assert.equal(t.primaryFor(route), 7);
    assert.deepEqual(t.primariesOf(7), [route]);
    assert.deepEqual(t.primariesOf(3), []);
  });

  it('fails over when the primary goes offline and reports the change', () => {
    const t = new PrimaryRouteTable([
      { nodeId: 1, order: 1, online: true, routes: [route, '10.0.0.0/8'] },
      { nodeId: 2, order: 2, online: true, routes: [route] },
    ]);
    assert.deepEqual(t.setOnline(1, false), [{ prefix: route, from: 1, to: 2 }, { prefix: '10.0.0.0/8', from: 1, to: null }]);
    assert.equal(t.primaryFor(route), 2);
    assert.equal(t.primaryFor('10.0.0.0/8'), null);
  });

  it('keeps the current primary when an earlier router comes back (no flapping)', () => {
    const t = new PrimaryRouteTable([
      { nodeId: 1, order: 1, online: false, routes: [route] },
      { nodeId: 2, order: 2, online: true, routes: [route] },
    ]);
    assert.equal(t.primaryFor(route), 2);
    assert.deepEqual(t.setOnline(1, true), []);
    assert.equal(t.primaryFor(route), 2);
    assert.deepEqual(t.setOnline(2, false), [{ prefix: route, from: 2, to: 1 }]);
  });

  it('elects among eligible routers for via grants, preferring the primary', () => {
    const t = new PrimaryRouteTable([
      { nodeId: 1, order: 1, online: true, routes: [route] },
      { nodeId: 2, order: 2, online: true, routes: [route] },
      { nodeId: 3, order: 3, online: true, routes: [route] },
    ]);
    assert.equal(t.electAmong(route, (id) => id !== 1), 2);
    assert.equal(t.electAmong(route, () => true), 1);
    assert.equal(t.electAmong(route, () => false), null);
  });

  it('re-elects when a router stops serving or is removed', () => {
    const t = new PrimaryRouteTable([
      { nodeId: 1, order: 1, online: true, routes: [route] },
      { nodeId: 2, order: 2, online: true, routes: [route] },
    ]);
    assert.deepEqual(t.upsert({ nodeId: 1, order: 1, online: true, routes: [] }), [{ prefix: route, from: 1, to: 2 }]);
    assert.deepEqual(t.remove(2), [{ prefix: route, from: 2, to: null }]);
  });
});
