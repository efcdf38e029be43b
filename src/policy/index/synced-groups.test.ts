// Groups synced from the identity provider (`group:<name>@<domain>`): the policy accepts them
// without a groups entry, selects users by their synced groups, and a change of a user's groups
// reaches the index as an ordinary user change with a delta for exactly the affected nodes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyIndex, compilePolicyText, type NodeFacts, type TailnetFacts } from '../index.js';
import { PolicyError } from '../errors.js';
import { runPolicyTests } from '../tests.js';

function node(id: number, name: string, extra: Partial<NodeFacts> = {}): NodeFacts {
  return { id, name, ipv4: `100.64.0.${id}`, ipv6: null, userId: null, tags: [], advertisedRoutes: [], approvedRoutes: [], online: true, ...extra };
}

const facts: TailnetFacts = {
  users: [
    { id: 1, name: 'ann', email: 'ann@example.com', groups: ['eng@example.com'] },
    { id: 2, name: 'ben', email: 'ben@example.com' },
  ],
  nodes: [node(1, 'ann-pc', { userId: 1 }), node(2, 'ben-pc', { userId: 2 }), node(3, 'db', { tags: ['tag:db'], userId: 2 })],
};

const policy = `{
  "tagOwners": {"tag:db": ["group:eng@example.com"], "tag:web": ["group:Eng@example.com"]},
  "acls": [{"action": "accept", "src": ["group:eng@example.com"], "dst": ["tag:db:5432"]}],
  "ssh": [{"action": "accept", "src": ["group:eng@example.com"], "dst": ["tag:db"], "users": ["root"]}],
}`;

describe('synced groups in the policy', () => {
  it('refuses an undefined group that is not written as name@domain', () => {
    assert.throws(() => compilePolicyText('{"acls":[{"action":"accept","src":["group:eng"],"dst":["*:*"]}]}'), (err: unknown) =>
      err instanceof PolicyError && /group not found: "group:eng"; define it in groups \(or write a group synced/.test(err.message));
  });

  it('selects the members in acls, ssh and tagOwners (case-insensitive)', () => {
    const index = new PolicyIndex(compilePolicyText(policy), facts);
    assert.ok(index.filterFor(3).some((r) => r.SrcIPs.includes('100.64.0.1')), 'ann reaches the database');
    assert.ok(!index.filterFor(3).some((r) => r.SrcIPs.includes('100.64.0.2')), 'ben does not');
    assert.equal(index.tagsAllowed({ userId: 1 }, ['tag:web']).allowed, true);
    assert.equal(index.tagsAllowed({ userId: 2 }, ['tag:web']).allowed, false);
    assert.ok(index.sshRulesFor(3).length > 0);
  });

  it('is usable in nodeAttrs, autoApprovers and tests', () => {
    const text = `{
      "tagOwners": {"tag:db": ["group:eng@example.com"]},
      "acls": [{"action": "accept", "src": ["group:eng@example.com"], "dst": ["tag:db:5432"]}],
      "nodeAttrs": [{"target": ["group:eng@example.com"], "attr": ["funnel"]}],
      "autoApprovers": {"routes": {"10.0.0.0/8": ["group:eng@example.com"]}},
      "tests": [{"src": "group:eng@example.com", "accept": ["tag:db:5432"]}, {"src": "ben@example.com", "deny": ["tag:db:5432"]}],
    }`;
    const index = new PolicyIndex(compilePolicyText(text), facts);
    const report = runPolicyTests(index);
    assert.deepEqual(report.failures, []);
    assert.equal(report.total, 2);
    assert.ok(Object.hasOwn(index.selfView(1).CapMap, 'funnel'), "ann's device gets the attribute");
    assert.ok(!Object.hasOwn(index.selfView(2).CapMap, 'funnel'), "ben's does not");
    assert.deepEqual(index.autoApprovedRoutes({ userId: 1, tags: [], ipv4: null, ipv6: null }, ['10.1.0.0/16']), ['10.1.0.0/16']);
    assert.deepEqual(index.autoApprovedRoutes({ userId: 2, tags: [], ipv4: null, ipv6: null }, ['10.1.0.0/16']), []);
  });

  it('follows a change of groups incrementally: leaving and joining are user changes with deltas', () => {
    const index = new PolicyIndex(compilePolicyText(policy), facts);
    const left = index.upsertUser({ id: 1, name: 'ann', email: 'ann@example.com', groups: [] });
    assert.ok(left.filterChanged.includes(3), "the database's filter changes");
    assert.deepEqual(left.lost.get(3), [1], 'the database no longer sees ann');
    assert.ok(!index.filterFor(3).some((r) => r.SrcIPs.includes('100.64.0.1')));
    const joined = index.upsertUser({ id: 2, name: 'ben', email: 'ben@example.com', groups: ['ENG@example.com'] });
    assert.deepEqual(joined.gained.get(3), [2], 'the database sees ben now');
    assert.ok(index.filterFor(3).some((r) => r.SrcIPs.includes('100.64.0.2')));
    const same = index.upsertUser({ id: 2, name: 'ben', email: 'ben@example.com', groups: ['eng@example.com'] });
    assert.equal(same.filterChanged.length + same.gained.size + same.lost.size, 0, 'no change, no delta');
  });
});
